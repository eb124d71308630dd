// A1111's `<lora:name:weight>` prompt syntax, without torch: the REST layer reads the tags at
// submission (to validate and store them with the job) and the worker hands the generator the
// prompt without them, so the text encoder never sees the tags (A1111 does the same; the tags
// stay in the stored prompt and in the PNG `parameters` text).
//
// The syntax accepted:
//   <lora:NAME>          weight 1
//   <lora:NAME:WEIGHT>   WEIGHT a decimal number ("0.8", "-1", "+.5", "1e-1"); NAME may itself
//                        contain colons ("<lora:a:b:0.5>" is LoRA "a:b" at 0.5)
// The tag word is "lora", lower case. Spaces around NAME and WEIGHT are ignored. A tag with an
// empty name, a last part that is not a number (e.g. "<lora:name:>", "<lora:a:te=1>"), a line
// break, or no closing '>' is malformed and left in the prompt as plain text, as is anything
// else between angle brackets. The clean prompt is the prompt with each well-formed tag cut out
// and nothing else changed (the text around it is not tidied, as in A1111).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "server/inference/generator.h"

namespace atelier::inference {

struct PromptLoras {
  std::string prompt;          // the prompt without its well-formed tags
  std::vector<LoraRef> loras;  // one per well-formed tag, in prompt order (duplicates kept)
};

PromptLoras split_prompt_loras(std::string_view prompt);

}  // namespace atelier::inference
