# One helper per target kind, so every test and fuzzer is registered the same way.
include(GoogleTest)

# One gtest binary per layer: src/<layer>/*_test.cc -> qforge_<layer>_test, label "unit".
# Tests that need the llama.cpp referee libraries link qforge_referee_libs when it exists.
function(qforge_add_layer_tests)
  file(GLOB layers RELATIVE ${PROJECT_SOURCE_DIR}/src ${PROJECT_SOURCE_DIR}/src/*)
  foreach(layer ${layers})
    file(GLOB_RECURSE tests CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/src/${layer}/*_test.cc)
    if(NOT tests)
      continue()
    endif()
    set(target qforge_${layer}_test)
    add_executable(${target} ${tests})
    target_link_libraries(${target} PRIVATE qforge qforge_test_support GTest::gtest GTest::gtest_main GTest::gmock)
    if(TARGET qforge_referee_libs)
      target_link_libraries(${target} PRIVATE qforge_referee_libs)
      target_compile_definitions(${target} PRIVATE QFORGE_HAVE_REFEREE=1)
    endif()
    target_compile_definitions(${target} PRIVATE
      QFORGE_SHARED_DIR="${QFORGE_SHARED_DIR}" QFORGE_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
    gtest_discover_tests(${target} PROPERTIES LABELS "unit;${layer}" DISCOVERY_TIMEOUT 60)
  endforeach()
endfunction()

# A libFuzzer target: qforge_fuzzer(name source).
function(qforge_fuzzer name source)
  add_executable(${name} ${source})
  target_compile_options(${name} PRIVATE -fsanitize=fuzzer,address,undefined)
  target_link_options(${name} PRIVATE -fsanitize=fuzzer,address,undefined)
  target_link_libraries(${name} PRIVATE qforge)
endfunction()
