# Locate the stable-diffusion.cpp source tree for the build.
#
# Order:
#   1. -DSDREST_SD_CPP_DIR=/path or the SDREST_SD_CPP_DIR environment variable: any local
#      stable-diffusion.cpp checkout (must contain include/stable-diffusion.h and ggml/).
#   2. The pinned default: the tree vendored in the registry's source distribution of
#      stable-diffusion-cpp-python (the upstream git host is not reachable from our machines).
#      It is downloaded with pip, checked against a pinned sha256 and unpacked into a cache
#      directory, so a rebuild never downloads again.
#   3. Our own patches, native/patches/*.patch in name order, are applied to that unpacked tree
#      after the hash check (never to a local tree of option 1). The unpack directory's name
#      carries a hash of the patch set, so changing a patch unpacks and patches a fresh copy
#      instead of editing a tree another build directory compiles.
#
# Outputs: SDREST_SD_CPP_DIR (absolute path), SDREST_SD_CPP_ORIGIN (human-readable provenance),
#          SDREST_SD_CPP_PATCHES (file names of the patches applied, empty for a local tree).

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

file(GLOB SDREST_NATIVE_PATCH_FILES "${CMAKE_CURRENT_LIST_DIR}/../patches/*.patch")
list(SORT SDREST_NATIVE_PATCH_FILES)
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${SDREST_NATIVE_PATCH_FILES})
set(SDREST_SD_CPP_PATCHES "")

if(NOT "${SDREST_SD_CPP_DIR}" STREQUAL "")
    get_filename_component(SDREST_SD_CPP_DIR "${SDREST_SD_CPP_DIR}" ABSOLUTE)
    _sdrest_check_tree("${SDREST_SD_CPP_DIR}")
    set(SDREST_SD_CPP_ORIGIN "local tree ${SDREST_SD_CPP_DIR}")
    message(STATUS "sdrest: using local stable-diffusion.cpp at ${SDREST_SD_CPP_DIR}")
    # sdrest calls sd_cancel_generation (upstream since pull request 1124; a patch of ours for
    # the pinned tree). A local tree is never patched: an older one must get the patch by hand.
    file(STRINGS "${SDREST_SD_CPP_DIR}/include/stable-diffusion.h" _has_cancel REGEX "sd_cancel_generation")
    if(NOT _has_cancel)
        message(WARNING "sdrest: ${SDREST_SD_CPP_DIR} has no sd_cancel_generation(); apply "
                        "native/patches/*.patch to it (patch -p1) or sdrest will refuse the library.")
    endif()
    return()
endif()

# The patch set's identity: a hash over the patches' own hashes, in the order they apply.
set(_patch_ids "")
foreach(_patch IN LISTS SDREST_NATIVE_PATCH_FILES)
    file(SHA256 "${_patch}" _patch_sha)
    string(APPEND _patch_ids "${_patch_sha}")
    get_filename_component(_patch_name "${_patch}" NAME)
    list(APPEND SDREST_SD_CPP_PATCHES "${_patch_name}")
endforeach()
set(_patch_suffix "")
if(SDREST_NATIVE_PATCH_FILES)
    string(SHA256 _patch_set "${_patch_ids}")
    string(SUBSTRING "${_patch_set}" 0 12 _patch_set)
    set(_patch_suffix "-patched-${_patch_set}")
endif()

function(_sdrest_apply_patches tree unpacked)
    if(NOT SDREST_NATIVE_PATCH_FILES)
        return()
    endif()
    find_program(SDREST_PATCH_EXECUTABLE patch)
    if(NOT SDREST_PATCH_EXECUTABLE)
        find_package(Git QUIET)
    endif()
    foreach(_patch IN LISTS SDREST_NATIVE_PATCH_FILES)
        get_filename_component(_name "${_patch}" NAME)
        if(SDREST_PATCH_EXECUTABLE)
            # --fuzz=0: the tree is pinned by its hash, so a patch applies exactly or not at all.
            set(_cmd "${SDREST_PATCH_EXECUTABLE}" -p1 --forward --batch --fuzz=0 --no-backup-if-mismatch -i "${_patch}")
        elseif(GIT_EXECUTABLE)
            # The ceiling keeps git from finding a repository around the cache (say the build
            # tree's fallback cache inside a checkout), which would re-root the patch's paths.
            get_filename_component(_ceiling "${tree}" DIRECTORY)
            set(_cmd "${CMAKE_COMMAND}" -E env "GIT_CEILING_DIRECTORIES=${_ceiling}"
                     "${GIT_EXECUTABLE}" apply -p1 "${_patch}")
        else()
            file(REMOVE_RECURSE "${unpacked}")
            message(FATAL_ERROR "sdrest: applying native/patches needs 'patch' or 'git'; install one of them.")
        endif()
        execute_process(COMMAND ${_cmd} WORKING_DIRECTORY "${tree}"
                        RESULT_VARIABLE _rc OUTPUT_VARIABLE _out ERROR_VARIABLE _out)
        if(NOT _rc EQUAL 0)
            file(REMOVE_RECURSE "${unpacked}")
            message(FATAL_ERROR "sdrest: patch ${_name} does not apply to the pinned tree:\n${_out}")
        endif()
        message(STATUS "sdrest: applied native/patches/${_name}")
    endforeach()
endfunction()

_sdrest_default_cache_dir(_cache)
set(SDREST_SOURCE_CACHE "${_cache}" CACHE PATH "Where the pinned native source is downloaded and unpacked")
string(REPLACE "-" "_" _file_stem "${SDREST_SDIST_NAME}")
set(_archive "${SDREST_SOURCE_CACHE}/downloads/${_file_stem}-${SDREST_SDIST_VERSION}.tar.gz")
set(_unpacked "${SDREST_SOURCE_CACHE}/src/${_file_stem}-${SDREST_SDIST_VERSION}-${SDREST_SDIST_SHA256}${_patch_suffix}")
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
    _sdrest_apply_patches("${_tree}" "${_unpacked}")
    file(WRITE "${_stamp}" "${SDREST_SDIST_SHA256}${_patch_suffix}\n")
endif()

set(SDREST_SD_CPP_DIR "${_tree}")
set(SDREST_SD_CPP_ORIGIN "${SDREST_SDIST_NAME}==${SDREST_SDIST_VERSION} sdist (sha256 ${SDREST_SDIST_SHA256}), vendor/stable-diffusion.cpp")
if(SDREST_SD_CPP_PATCHES)
    list(JOIN SDREST_SD_CPP_PATCHES ", " _patch_list)
    string(APPEND SDREST_SD_CPP_ORIGIN ", patched: ${_patch_list}")
endif()
message(STATUS "sdrest: using pinned stable-diffusion.cpp at ${SDREST_SD_CPP_DIR}")
