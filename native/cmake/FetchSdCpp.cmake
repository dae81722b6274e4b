# Locate the stable-diffusion.cpp source tree for the build.
#
# Order:
#   1. -DSDREST_SD_CPP_DIR=/path or the SDREST_SD_CPP_DIR environment variable: any local
#      stable-diffusion.cpp checkout (must contain include/stable-diffusion.h and ggml/).
#   2. The pinned default: the tree vendored in the registry's source distribution of
#      stable-diffusion-cpp-python (the upstream git host is not reachable from our machines).
#      It is downloaded with pip, checked against a pinned sha256 and unpacked into a cache
#      directory, so a rebuild never downloads again.
#
# Outputs: SDREST_SD_CPP_DIR (absolute path), SDREST_SD_CPP_ORIGIN (human-readable provenance).

set(SDREST_SDIST_NAME "stable-diffusion-cpp-python" CACHE STRING "Registry package that vendors stable-diffusion.cpp")
set(SDREST_SDIST_VERSION "0.4.7" CACHE STRING "Pinned version of that package")
set(SDREST_SDIST_SHA256 "998d1957260dd5ae4e18a8acc0c14b0a8757aaa9f96515197b6d5bbf46df9282"
    CACHE STRING "sha256 of the pinned source distribution")
set(SDREST_SD_CPP_DIR "$ENV{SDREST_SD_CPP_DIR}" CACHE PATH "Local stable-diffusion.cpp tree (empty: use the pinned download)")

function(_sdrest_default_cache_dir out)
    if(DEFINED ENV{SDREST_CACHE_DIR} AND NOT "$ENV{SDREST_CACHE_DIR}" STREQUAL "")
        set(dir "$ENV{SDREST_CACHE_DIR}")
    elseif(DEFINED ENV{XDG_CACHE_HOME} AND NOT "$ENV{XDG_CACHE_HOME}" STREQUAL "")
        set(dir "$ENV{XDG_CACHE_HOME}/sdrest")
    elseif(DEFINED ENV{HOME})
        set(dir "$ENV{HOME}/.cache/sdrest")
    else()
        set(dir "${CMAKE_BINARY_DIR}/sdrest-cache")
    endif()
    set(${out} "${dir}" PARENT_SCOPE)
endfunction()

function(_sdrest_check_tree dir)
    if(NOT EXISTS "${dir}/include/stable-diffusion.h" OR NOT EXISTS "${dir}/ggml/CMakeLists.txt")
        message(FATAL_ERROR
            "sdrest: '${dir}' is not a stable-diffusion.cpp source tree "
            "(expected include/stable-diffusion.h and ggml/CMakeLists.txt; "
            "clone it with --recursive so ggml is present).")
    endif()
endfunction()

if(NOT "${SDREST_SD_CPP_DIR}" STREQUAL "")
    get_filename_component(SDREST_SD_CPP_DIR "${SDREST_SD_CPP_DIR}" ABSOLUTE)
    _sdrest_check_tree("${SDREST_SD_CPP_DIR}")
    set(SDREST_SD_CPP_ORIGIN "local tree ${SDREST_SD_CPP_DIR}")
    message(STATUS "sdrest: using local stable-diffusion.cpp at ${SDREST_SD_CPP_DIR}")
    return()
endif()

_sdrest_default_cache_dir(_cache)
set(SDREST_SOURCE_CACHE "${_cache}" CACHE PATH "Where the pinned native source is downloaded and unpacked")
string(REPLACE "-" "_" _file_stem "${SDREST_SDIST_NAME}")
set(_archive "${SDREST_SOURCE_CACHE}/downloads/${_file_stem}-${SDREST_SDIST_VERSION}.tar.gz")
set(_unpacked "${SDREST_SOURCE_CACHE}/src/${_file_stem}-${SDREST_SDIST_VERSION}-${SDREST_SDIST_SHA256}")
set(_tree "${_unpacked}/${_file_stem}-${SDREST_SDIST_VERSION}/vendor/stable-diffusion.cpp")
set(_stamp "${_unpacked}/.complete")

function(_sdrest_sha256_ok file out)
    set(${out} FALSE PARENT_SCOPE)
    if(EXISTS "${file}")
        file(SHA256 "${file}" _got)
        if(_got STREQUAL SDREST_SDIST_SHA256)
            set(${out} TRUE PARENT_SCOPE)
        endif()
    endif()
endfunction()

if(NOT EXISTS "${_stamp}")
    _sdrest_sha256_ok("${_archive}" _ok)
    if(NOT _ok AND EXISTS "${_archive}")
        file(SHA256 "${_archive}" _got)
        message(WARNING "sdrest: sha256 mismatch for the cached ${_archive}: got ${_got}, expected "
                        "${SDREST_SDIST_SHA256}. Deleting it and downloading again.")
        file(REMOVE "${_archive}")
    endif()
    if(NOT _ok)
        if(NOT Python_EXECUTABLE)
            find_package(Python COMPONENTS Interpreter REQUIRED)
        endif()
        set(_dl "${SDREST_SOURCE_CACHE}/downloads/tmp")
        file(REMOVE_RECURSE "${_dl}")
        file(MAKE_DIRECTORY "${_dl}")
        message(STATUS "sdrest: downloading ${SDREST_SDIST_NAME}==${SDREST_SDIST_VERSION} source with pip")
        execute_process(
            COMMAND "${Python_EXECUTABLE}" -m pip download --no-deps --no-binary :all:
                    --disable-pip-version-check --quiet
                    "${SDREST_SDIST_NAME}==${SDREST_SDIST_VERSION}" -d "${_dl}"
            RESULT_VARIABLE _rc)
        file(GLOB _got_files "${_dl}/*.tar.gz")
        list(LENGTH _got_files _n)
        if(NOT _rc EQUAL 0 OR NOT _n EQUAL 1)
            message(FATAL_ERROR
                "sdrest: could not download ${SDREST_SDIST_NAME}==${SDREST_SDIST_VERSION} with pip "
                "(exit ${_rc}). Check the package index is reachable, or point "
                "SDREST_SD_CPP_DIR at a local stable-diffusion.cpp checkout.")
        endif()
        list(GET _got_files 0 _got_file)
        file(RENAME "${_got_file}" "${_archive}")
        file(REMOVE_RECURSE "${_dl}")
    endif()
    _sdrest_sha256_ok("${_archive}" _ok)
    if(NOT _ok)
        file(SHA256 "${_archive}" _got)
        file(REMOVE "${_archive}")
        message(FATAL_ERROR
            "sdrest: sha256 mismatch for ${_archive}: got ${_got}, "
            "expected ${SDREST_SDIST_SHA256}. The file was removed; refusing to build from it.")
    endif()
    file(REMOVE_RECURSE "${_unpacked}")
    message(STATUS "sdrest: unpacking vendor/stable-diffusion.cpp from ${_archive}")
    file(ARCHIVE_EXTRACT INPUT "${_archive}" DESTINATION "${_unpacked}"
         PATTERNS "*/vendor/stable-diffusion.cpp/*")
    _sdrest_check_tree("${_tree}")
    file(WRITE "${_stamp}" "${SDREST_SDIST_SHA256}\n")
endif()

set(SDREST_SD_CPP_DIR "${_tree}")
set(SDREST_SD_CPP_ORIGIN "${SDREST_SDIST_NAME}==${SDREST_SDIST_VERSION} sdist (sha256 ${SDREST_SDIST_SHA256}), vendor/stable-diffusion.cpp")
message(STATUS "sdrest: using pinned stable-diffusion.cpp at ${SDREST_SD_CPP_DIR}")
