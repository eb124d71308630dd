// The owner of the torch tests' precompiled header when tests/ builds with its own flags
// (ATELIER_TEST_COMPILE_OPTIONS, tests/CMakeLists.txt): a target needs a source to carry one.
