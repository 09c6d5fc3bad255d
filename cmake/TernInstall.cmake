# `cmake --install`: ternd and its systemd integration, the tools, libtern with its headers, a
# pkg-config file and a CMake package (find_package(tern) -> tern::tern). Included at the end of
# the top-level CMakeLists.txt, once every target exists; targets that this configuration does
# not build (no CUDA, benchmarks off, work in progress) are simply not installed.
#
# Layout (GNUInstallDirs, prefix /usr/local unless CMAKE_INSTALL_PREFIX says otherwise):
#   sbin/ternd                             the daemon
#   bin/ternctl, bin/ib-bench, bin/tern-bench
#   lib/libtern.so*, include/tern/tern.h, include/tern/tern.hpp
#   lib/pkgconfig/tern.pc, lib/cmake/tern/ternConfig*.cmake
#   lib/systemd/system/ternd.service       TERN_SYSTEMD_UNITDIR
#   lib/sysusers.d/tern.conf               TERN_SYSUSERSDIR
#   lib/tmpfiles.d/tern.conf               TERN_TMPFILESDIR
#   share/doc/tern/ternd.toml.example, operations.md, configuration.md
#   lib/python3.X/dist-packages/tern/      TERN_PYTHON_INSTALL_DIR (lib/python3/... for prefix /usr)
# systemd searches /usr/local/lib/systemd/system (and .../sysusers.d, .../tmpfiles.d) as well as
# /usr/lib/..., so both the default prefix and -DCMAKE_INSTALL_PREFIX=/usr work unchanged.
include_guard(GLOBAL)
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

include(TernInstallDirs)   # TERN_SYSTEMD_UNITDIR, TERN_SYSUSERSDIR, TERN_TMPFILESDIR, TERN_PYTHON_INSTALL_DIR

# Executables find an installed libtern next to them (lib/ beside bin/ and sbin/), also when the
# tree is staged with DESTDIR or moved.
file(RELATIVE_PATH _tern_bin_to_lib "${CMAKE_INSTALL_FULL_BINDIR}" "${CMAKE_INSTALL_FULL_LIBDIR}")
set(_tern_install_rpath "$ORIGIN/${_tern_bin_to_lib}")

if(TARGET ternd)
  set_target_properties(ternd PROPERTIES INSTALL_RPATH "${_tern_install_rpath}")
  install(TARGETS ternd RUNTIME DESTINATION ${CMAKE_INSTALL_SBINDIR} COMPONENT daemon)
endif()
foreach(tool ternctl ib-bench tern-bench)
  if(TARGET ${tool})
    set_target_properties(${tool} PROPERTIES INSTALL_RPATH "${_tern_install_rpath}")
    install(TARGETS ${tool} RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT tools)
  endif()
endforeach()

# systemd integration: the unit names the installed ternd; the snippets are copied as they are.
set(TERN_INSTALL_FULL_SBINDIR "${CMAKE_INSTALL_FULL_SBINDIR}")
set(TERN_INSTALL_FULL_DOCDIR "${CMAKE_INSTALL_FULL_DOCDIR}")
configure_file(${PROJECT_SOURCE_DIR}/systemd/ternd.service.in ${PROJECT_BINARY_DIR}/systemd/ternd.service @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/systemd/ternd.service DESTINATION ${TERN_SYSTEMD_UNITDIR} COMPONENT daemon)
install(FILES ${PROJECT_SOURCE_DIR}/systemd/sysusers-tern.conf DESTINATION ${TERN_SYSUSERSDIR}
        RENAME tern.conf COMPONENT daemon)
install(FILES ${PROJECT_SOURCE_DIR}/systemd/tmpfiles-tern.conf DESTINATION ${TERN_TMPFILESDIR}
        RENAME tern.conf COMPONENT daemon)
# The example lives with the docs: ternd reads /etc/tern/ternd.toml, whatever the prefix.
install(FILES ${PROJECT_SOURCE_DIR}/systemd/ternd.toml.example
              ${PROJECT_SOURCE_DIR}/docs/operations.md ${PROJECT_SOURCE_DIR}/docs/configuration.md
        DESTINATION ${CMAKE_INSTALL_DOCDIR} COMPONENT daemon)

# libtern: the shared library, its public headers, pkg-config and CMake package files.
if(TARGET tern::tern)
  get_target_property(_tern_client tern::tern ALIASED_TARGET)
  if(NOT _tern_client)
    set(_tern_client tern::tern)
  endif()
  get_target_property(_tern_client_type ${_tern_client} TYPE)
  if(NOT _tern_client_type STREQUAL "SHARED_LIBRARY")
    message(FATAL_ERROR "install: tern::tern must be a shared library for trainers to link (is ${_tern_client_type})")
  endif()
  get_target_property(TERN_CLIENT_OUTPUT_NAME ${_tern_client} OUTPUT_NAME)
  if(NOT TERN_CLIENT_OUTPUT_NAME)
    set(TERN_CLIENT_OUTPUT_NAME ${_tern_client})
  endif()
  set(TERN_CLIENT_LINKER_NAME
      "${CMAKE_SHARED_LIBRARY_PREFIX}${TERN_CLIENT_OUTPUT_NAME}${CMAKE_SHARED_LIBRARY_SUFFIX}")
  get_target_property(_tern_soversion ${_tern_client} SOVERSION)
  if(_tern_soversion)
    set(TERN_CLIENT_SONAME "${TERN_CLIENT_LINKER_NAME}.${_tern_soversion}")
  else()
    set(TERN_CLIENT_SONAME "${TERN_CLIENT_LINKER_NAME}")
  endif()

  install(TARGETS ${_tern_client}
          LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT client NAMELINK_COMPONENT client)
  install(DIRECTORY ${PROJECT_SOURCE_DIR}/libclient/include/tern
          DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} COMPONENT client
          FILES_MATCHING PATTERN "*.h" PATTERN "*.hpp")

  configure_file(${PROJECT_SOURCE_DIR}/cmake/tern.pc.in ${PROJECT_BINARY_DIR}/tern.pc @ONLY)
  install(FILES ${PROJECT_BINARY_DIR}/tern.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig COMPONENT client)

  set(_tern_cmake_dir ${CMAKE_INSTALL_LIBDIR}/cmake/tern)
  configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/ternConfig.cmake.in
    ${PROJECT_BINARY_DIR}/ternConfig.cmake
    INSTALL_DESTINATION ${_tern_cmake_dir}
    PATH_VARS CMAKE_INSTALL_LIBDIR CMAKE_INSTALL_INCLUDEDIR)
  # 0.x: a minor version may change the ABI (the soname says which), so only patch releases match.
  write_basic_package_version_file(${PROJECT_BINARY_DIR}/ternConfigVersion.cmake
    VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
  install(FILES ${PROJECT_BINARY_DIR}/ternConfig.cmake ${PROJECT_BINARY_DIR}/ternConfigVersion.cmake
          DESTINATION ${_tern_cmake_dir} COMPONENT client)
else()
  message(STATUS "install: libtern (tern::tern) is not built; no library, headers, tern.pc or ternConfig.cmake")
endif()

# The Python package (python/: the _tern module and tern/*.py, with the DDP hook) in
# TERN_PYTHON_INSTALL_DIR; _tern's INSTALL_RPATH ($ORIGIN/../../..) reaches lib/ from there.
if(TARGET _tern)
  install(TARGETS _tern LIBRARY DESTINATION ${TERN_PYTHON_INSTALL_DIR}/tern COMPONENT python)
  file(GLOB _tern_python_files ${PROJECT_SOURCE_DIR}/python/tern/*.py)
  install(FILES ${_tern_python_files} DESTINATION ${TERN_PYTHON_INSTALL_DIR}/tern COMPONENT python)
endif()
