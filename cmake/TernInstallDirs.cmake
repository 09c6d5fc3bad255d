# Where `cmake --install` puts what GNUInstallDirs has no variable for. Separate from TernInstall
# (which needs every target defined, so it runs last) because tests/systemd needs the same paths.
include_guard(GLOBAL)
include(GNUInstallDirs)

# systemd looks in <prefix>/lib/..., never in a multiarch lib/x86_64-linux-gnu/: not LIBDIR.
set(TERN_SYSTEMD_UNITDIR "lib/systemd/system" CACHE STRING
    "Where ternd.service is installed (relative paths are below CMAKE_INSTALL_PREFIX)")
set(TERN_SYSUSERSDIR "lib/sysusers.d" CACHE STRING "Where the sysusers.d snippet goes")
set(TERN_TMPFILESDIR "lib/tmpfiles.d" CACHE STRING "Where the tmpfiles.d snippet goes")

# The Python package: where Debian's python3 looks, dist-packages below /usr/local/lib/python3.X
# (prefix /usr/local) or /usr/lib/python3 (prefix /usr). Known once python/ found the interpreter.
if(TERN_PYTHON_EXECUTABLE)
  if(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
    set(_tern_python_default "lib/python3/dist-packages")
  else()
    # python/ found the interpreter in its own scope; ask it for its version.
    execute_process(COMMAND ${TERN_PYTHON_EXECUTABLE} -c "import sys; print('%d.%d' % sys.version_info[:2])"
                    OUTPUT_VARIABLE _tern_python_version OUTPUT_STRIP_TRAILING_WHITESPACE)
    set(_tern_python_default "lib/python${_tern_python_version}/dist-packages")
  endif()
  set(TERN_PYTHON_INSTALL_DIR "${_tern_python_default}" CACHE STRING
      "Where the tern Python package is installed (relative paths are below CMAKE_INSTALL_PREFIX)")
endif()
