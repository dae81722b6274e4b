# Which CUDA toolkit a -DSD_CUDA=ON build compiles with: the one place that decides it.
#
#   SDREST_CUDA_TOOLKIT=auto (default)  a complete system toolkit if there is one, else NVIDIA's
#                                       CUDA 13 Python wheels
#   SDREST_CUDA_TOOLKIT=system          a complete system toolkit, or a configure error
#   SDREST_CUDA_TOOLKIT=wheels          the wheels, even where a system toolkit exists
#
# A system toolkit is "complete" when it has nvcc, cuBLAS's header and libcublas: some machine
# images ship nvcc without cuBLAS (this project's build box has such a /usr/local/cuda), and ggml
# cannot link without it. Candidates, in order: CUDAToolkit_ROOT (variable or environment),
# CUDA_PATH, CUDA_HOME, the folder above the nvcc on PATH, then SDREST_CUDA_SEARCH_ROOTS.
# An explicit -DCMAKE_CUDA_COMPILER is the user's choice and is left alone.
#
# The wheels (nvidia-cuda-nvcc, -runtime, -crt, nvidia-nvvm, nvidia-cublas, nvidia-cuda-cccl)
# unpack into one root, site-packages/nvidia/cu13. They are taken from SDREST_CUDA_WHEEL_ROOT,
# else from the building Python's site-packages, else installed with pip into the build folder
# (pip is a build requirement, so this works in pip's isolated build environment). CMake's CUDA
# support wants unversioned libcudart.so/libcublas.so and a lib64 folder, which the wheels lack:
# those links are made in a folder of symlinks in the build folder, never in site-packages.
#
# Run as a script it prints the choice without building, which install.sh shows and the tests
# check:   cmake [-DSDREST_CUDA_TOOLKIT=auto] -P native/cmake/SdrestCudaToolkit.cmake
#   -> "system <root>" or "wheels" (and, on stderr, the incomplete toolkits it passed over).

if(CMAKE_SCRIPT_MODE_FILE)
    # Script mode has no cache: -D values arrive as plain variables.
    if(NOT DEFINED SDREST_CUDA_TOOLKIT)
        set(SDREST_CUDA_TOOLKIT "auto")
    endif()
    if(NOT DEFINED SDREST_CUDA_SEARCH_ROOTS)
        set(SDREST_CUDA_SEARCH_ROOTS "/usr/local/cuda;/opt/cuda")
    endif()
else()
    set(SDREST_CUDA_TOOLKIT "auto" CACHE STRING "CUDA toolkit for SD_CUDA builds: auto, system or wheels")
    set(SDREST_CUDA_SEARCH_ROOTS "/usr/local/cuda;/opt/cuda" CACHE STRING
        "System CUDA toolkit folders tried after CUDAToolkit_ROOT, CUDA_PATH, CUDA_HOME and the nvcc on PATH")
    set(SDREST_CUDA_WHEEL_ROOT "$ENV{SDREST_CUDA_WHEEL_ROOT}" CACHE PATH
        "An unpacked nvidia/cu13 wheel root (empty: the building Python's, else pip installs them)")
endif()
# The wheels a build needs, all from CUDA 13 (the 12.x nvcc wheel has no nvcc).
set(SDREST_CUDA_BUILD_WHEELS
    "nvidia-cuda-nvcc>=13,<14" "nvidia-cuda-runtime>=13,<14" "nvidia-cuda-crt>=13,<14"
    "nvidia-nvvm>=13,<14" "nvidia-cublas>=13,<14" "nvidia-cuda-cccl>=13,<14")

# out: TRUE when root holds nvcc, cublas_v2.h and a libcublas.
function(sdrest_cuda_toolkit_complete root out)
    file(GLOB _cublas "${root}/lib64/libcublas.so*" "${root}/lib/libcublas.so*"
         "${root}/lib/x64/cublas.lib" "${root}/targets/*/lib/libcublas.so*")
    if((EXISTS "${root}/bin/nvcc" OR EXISTS "${root}/bin/nvcc.exe")
       AND (EXISTS "${root}/include/cublas_v2.h" OR EXISTS "${root}/targets/${CMAKE_SYSTEM_PROCESSOR}-linux/include/cublas_v2.h")
       AND _cublas)
        set(${out} TRUE PARENT_SCOPE)
    else()
        set(${out} FALSE PARENT_SCOPE)
    endif()
endfunction()

# out_root: the first complete system toolkit ("" if none); out_passed: incomplete ones seen.
function(sdrest_cuda_find_system_toolkit out_root out_passed)
    set(_candidates "")
    foreach(_value IN ITEMS "${CUDAToolkit_ROOT}" "$ENV{CUDAToolkit_ROOT}" "$ENV{CUDA_PATH}" "$ENV{CUDA_HOME}")
        if(NOT _value STREQUAL "")
            list(APPEND _candidates "${_value}")
        endif()
    endforeach()
    find_program(_sdrest_path_nvcc nvcc NO_CACHE NO_CMAKE_PATH NO_CMAKE_ENVIRONMENT_PATH NO_CMAKE_SYSTEM_PATH)
    if(_sdrest_path_nvcc)
        file(REAL_PATH "${_sdrest_path_nvcc}" _real)
        get_filename_component(_bin "${_real}" DIRECTORY)
        get_filename_component(_root "${_bin}" DIRECTORY)
        list(APPEND _candidates "${_root}")
    endif()
    list(APPEND _candidates ${SDREST_CUDA_SEARCH_ROOTS})
    set(_passed "")
    foreach(_root IN LISTS _candidates)
        if(NOT IS_DIRECTORY "${_root}")
            continue()
        endif()
        sdrest_cuda_toolkit_complete("${_root}" _ok)
        if(_ok)
            set(${out_root} "${_root}" PARENT_SCOPE)
            set(${out_passed} "${_passed}" PARENT_SCOPE)
            return()
        endif()
        list(APPEND _passed "${_root}")
    endforeach()
    list(REMOVE_DUPLICATES _passed)
    set(${out_root} "" PARENT_SCOPE)
    set(${out_passed} "${_passed}" PARENT_SCOPE)
endfunction()

# out_kind: "system" or "wheels"; out_root: the system root (empty for wheels).
function(sdrest_cuda_choose out_kind out_root)
    if(NOT SDREST_CUDA_TOOLKIT MATCHES "^(auto|system|wheels)$")
        message(FATAL_ERROR "sdrest: SDREST_CUDA_TOOLKIT must be auto, system or wheels, not '${SDREST_CUDA_TOOLKIT}'")
    endif()
    set(_root "")
    if(NOT SDREST_CUDA_TOOLKIT STREQUAL "wheels")
        sdrest_cuda_find_system_toolkit(_root _passed)
        foreach(_p IN LISTS _passed)
            message(NOTICE "sdrest: ${_p}: not a complete CUDA toolkit (needs bin/nvcc, include/cublas_v2.h and libcublas); not used")
        endforeach()
    endif()
    if(_root)
        set(${out_kind} "system" PARENT_SCOPE)
    elseif(SDREST_CUDA_TOOLKIT STREQUAL "system")
        message(FATAL_ERROR "sdrest: SDREST_CUDA_TOOLKIT=system but no complete CUDA toolkit was found "
                            "(set CUDAToolkit_ROOT, or use the default 'auto' to build with NVIDIA's CUDA 13 wheels)")
    else()
        set(${out_kind} "wheels" PARENT_SCOPE)
    endif()
    set(${out_root} "${_root}" PARENT_SCOPE)
endfunction()

# out: an nvidia/cu13 root holding bin/nvcc (found or pip-installed into the build folder).
function(sdrest_cuda_wheel_root out)
    if(SDREST_CUDA_WHEEL_ROOT)
        if(NOT EXISTS "${SDREST_CUDA_WHEEL_ROOT}/bin/nvcc")
            message(FATAL_ERROR "sdrest: SDREST_CUDA_WHEEL_ROOT=${SDREST_CUDA_WHEEL_ROOT} has no bin/nvcc")
        endif()
        set(${out} "${SDREST_CUDA_WHEEL_ROOT}" PARENT_SCOPE)
        return()
    endif()
    if(NOT Python_EXECUTABLE)
        find_package(Python COMPONENTS Interpreter REQUIRED)
    endif()
    execute_process(
        COMMAND "${Python_EXECUTABLE}" -c "import sysconfig; print(sysconfig.get_path('purelib'))"
        OUTPUT_VARIABLE _site OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE _rc)
    if(_rc EQUAL 0 AND EXISTS "${_site}/nvidia/cu13/bin/nvcc" AND EXISTS "${_site}/nvidia/cu13/include/cublas_v2.h")
        set(${out} "${_site}/nvidia/cu13" PARENT_SCOPE)
        return()
    endif()
    set(_target "${CMAKE_BINARY_DIR}/cuda-wheels")
    if(NOT EXISTS "${_target}/nvidia/cu13/bin/nvcc" OR NOT EXISTS "${_target}/nvidia/cu13/include/cublas_v2.h")
        message(STATUS "sdrest: installing NVIDIA's CUDA 13 build wheels into ${_target} (about 1 GB, once per build folder)")
        execute_process(
            COMMAND "${Python_EXECUTABLE}" -m pip install --disable-pip-version-check --quiet
                    --no-deps --upgrade --target "${_target}" ${SDREST_CUDA_BUILD_WHEELS}
            RESULT_VARIABLE _rc)
        if(NOT _rc EQUAL 0 OR NOT EXISTS "${_target}/nvidia/cu13/bin/nvcc")
            message(FATAL_ERROR "sdrest: could not install the CUDA wheels with pip (${SDREST_CUDA_BUILD_WHEELS}); "
                                "install a CUDA toolkit, or point SDREST_CUDA_WHEEL_ROOT at an unpacked nvidia/cu13")
        endif()
    endif()
    set(${out} "${_target}/nvidia/cu13" PARENT_SCOPE)
endfunction()

# The folder of symlinks CMake's CUDA support is pointed at (see the header).
function(sdrest_cuda_link_farm wheel_root farm)
    file(REMOVE_RECURSE "${farm}")
    file(MAKE_DIRECTORY "${farm}/lib")
    foreach(_dir bin include nvvm cccl targets)
        if(EXISTS "${wheel_root}/${_dir}")
            file(CREATE_LINK "${wheel_root}/${_dir}" "${farm}/${_dir}" SYMBOLIC)
        endif()
    endforeach()
    file(GLOB _libs "${wheel_root}/lib/*")
    foreach(_lib IN LISTS _libs)
        get_filename_component(_name "${_lib}" NAME)
        file(CREATE_LINK "${_lib}" "${farm}/lib/${_name}" SYMBOLIC)
        if(_name MATCHES "^(lib[^.]+)\\.so\\.[0-9]+$")
            file(CREATE_LINK "${_lib}" "${farm}/lib/${CMAKE_MATCH_1}.so" SYMBOLIC)
        endif()
    endforeach()
    file(CREATE_LINK "lib" "${farm}/lib64" SYMBOLIC)
endfunction()

# Configure-time entry point: sets the compiler, toolkit root and ggml options for SD_CUDA.
# Outputs: SDREST_CUDA_TOOLKIT_KIND (system, wheels or "user" for an explicit compiler).
macro(sdrest_configure_cuda)
    # A compiler this module chose on an earlier configure is not "given by the user".
    if(DEFINED CMAKE_CUDA_COMPILER AND NOT CMAKE_CUDA_COMPILER STREQUAL SDREST_CUDA_CHOSEN_COMPILER)
        set(SDREST_CUDA_TOOLKIT_KIND "user")
        message(STATUS "sdrest: CUDA compiler given: ${CMAKE_CUDA_COMPILER}")
    else()
        sdrest_cuda_choose(SDREST_CUDA_TOOLKIT_KIND _sdrest_cuda_root)
        if(SDREST_CUDA_TOOLKIT_KIND STREQUAL "wheels")
            sdrest_cuda_wheel_root(_sdrest_wheel_root)
            set(_sdrest_cuda_root "${CMAKE_BINARY_DIR}/cuda-toolkit")
            sdrest_cuda_link_farm("${_sdrest_wheel_root}" "${_sdrest_cuda_root}")
            # The wheels have no libcuda.so stub, so no driver-API link: ggml's virtual memory
            # pool (which needs it) is off; its ordinary pool is used instead.
            set(GGML_CUDA_NO_VMM ON)
            message(STATUS "sdrest: building with NVIDIA's CUDA 13 wheels from ${_sdrest_wheel_root}")
        else()
            message(STATUS "sdrest: building with the system CUDA toolkit at ${_sdrest_cuda_root}")
        endif()
        set(CUDAToolkit_ROOT "${_sdrest_cuda_root}")
        set(CMAKE_CUDA_COMPILER "${_sdrest_cuda_root}/bin/nvcc" CACHE FILEPATH "CUDA compiler" FORCE)
        set(SDREST_CUDA_CHOSEN_COMPILER "${CMAKE_CUDA_COMPILER}" CACHE INTERNAL "")
        # CCCL 3.5 (CUDA 13.5) no longer includes <cuda/iterator> where the pinned argsort.cu
        # uses cuda::make_strided_iterator; pre-including it is harmless with older CCCLs.
        if(EXISTS "${_sdrest_cuda_root}/include/cccl/cuda/iterator" OR EXISTS "${_sdrest_cuda_root}/include/cuda/iterator")
            string(FIND "${CMAKE_CUDA_FLAGS}" "cuda/iterator" _sdrest_has_include)
            if(_sdrest_has_include EQUAL -1)
                set(CMAKE_CUDA_FLAGS "${CMAKE_CUDA_FLAGS} -include cuda/iterator" CACHE STRING "CUDA flags" FORCE)
            endif()
        endif()
    endif()
endmacro()

if(CMAKE_SCRIPT_MODE_FILE STREQUAL CMAKE_CURRENT_LIST_FILE)
    sdrest_cuda_choose(_kind _root)
    string(STRIP "${_kind} ${_root}" _choice)
    execute_process(COMMAND "${CMAKE_COMMAND}" -E echo "${_choice}")
endif()
