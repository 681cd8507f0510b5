# llama.cpp as the independent referee: libllama/libggml from the pinned npm package node-llama-cpp
# (tests/referee/package-lock.json, installed by scripts/install-deps.sh) and headers from the llama.cpp
# source bundle shipped inside that package. Nothing is downloaded here; if the package is missing the
# referee tests are not built and scripts/test.sh fails loudly instead.
set(QFORGE_SHARED_DIR "${PROJECT_SOURCE_DIR}/../shared" CACHE PATH "Folder with shared models and data")
set(QFORGE_NLC_DIR "${PROJECT_SOURCE_DIR}/tests/referee/node_modules" CACHE PATH "node_modules holding node-llama-cpp")
set(_bins "${QFORGE_NLC_DIR}/@node-llama-cpp/linux-x64/bins/linux-x64")
set(_bundle "${QFORGE_NLC_DIR}/node-llama-cpp/llama/gitRelease.bundle")
set(_src "${CMAKE_BINARY_DIR}/llama.cpp-src")

if(EXISTS "${_bins}/libllama.v0.4.0.so" AND EXISTS "${_bundle}")
  if(NOT EXISTS "${_src}/include/llama.h")
    execute_process(COMMAND git clone -q "${_bundle}" "${_src}" RESULT_VARIABLE rc OUTPUT_QUIET ERROR_QUIET)
    if(NOT rc EQUAL 0)
      message(FATAL_ERROR "could not unpack the llama.cpp bundle ${_bundle}")
    endif()
  endif()
  add_library(qforge_referee_libs INTERFACE)
  target_include_directories(qforge_referee_libs SYSTEM INTERFACE
    "${_src}/include" "${_src}/ggml/include" "${_src}/ggml/src")
  target_link_libraries(qforge_referee_libs INTERFACE
    "${_bins}/libllama.v0.4.0.so" "${_bins}/libggml.v0.4.0.so" "${_bins}/libggml-base.so")
  target_link_options(qforge_referee_libs INTERFACE "-Wl,-rpath,${_bins}")
  target_compile_definitions(qforge_referee_libs INTERFACE QFORGE_GGML_BACKEND_DIR="${_bins}")
  set(QFORGE_HAVE_REFEREE ON)
  message(STATUS "llama.cpp referee: ${_bins}")
else()
  set(QFORGE_HAVE_REFEREE OFF)
  message(WARNING "llama.cpp referee not found under ${QFORGE_NLC_DIR}: run scripts/install-deps.sh")
endif()
