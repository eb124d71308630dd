# atelier_torch_pch(TARGET): compile TARGET with <torch/torch.h> precompiled.
#
# Parsing <torch/torch.h> costs each translation unit that includes it about 25 s of its
# 45-75 s; about 40 of them do (server/inference, the torch tests and benchmarks). One PCH,
# owned by atelier_inference_torch, is built once and reused by every other torch target
# (REUSE_FROM), so the build pays the parse once. Reuse needs the same compile flags: the torch
# targets all get them from atelier_inference_torch (PUBLIC), and the tests' extra ATELIER_*
# defines are macros the torch headers never read, which GCC accepts. CMake adds -Winvalid-pch,
# so a PCH that stops matching is reported (and fails an ATELIER_WERROR build) rather than
# silently ignored. Where tests/ compiles with flags of its own (ATELIER_TEST_COMPILE_OPTIONS),
# it sets ATELIER_TORCH_PCH_OWNER to a PCH of its own built with them.
set(ATELIER_TORCH_PCH_OWNER atelier_inference_torch)

function(atelier_torch_pch target)
  if(NOT ATELIER_PCH)
    return()
  endif()
  if(target STREQUAL ATELIER_TORCH_PCH_OWNER)
    target_precompile_headers(${target} PRIVATE <torch/torch.h>)
  else()
    target_precompile_headers(${target} REUSE_FROM ${ATELIER_TORCH_PCH_OWNER})
  endif()
endfunction()
