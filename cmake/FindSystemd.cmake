# FindSystemd.cmake: locates libsystemd (Debian's libsystemd-dev) without
# pkg-config and provides an imported target. quiesce uses its sd-daemon
# part only: sd_notify, sd_watchdog_enabled, sd_listen_fds, sd_is_socket_inet.
#
#   Systemd::libsystemd
#
# Sets Systemd_FOUND, SYSTEMD_INCLUDE_DIR, SYSTEMD_LIBRARY.

find_path(SYSTEMD_INCLUDE_DIR NAMES systemd/sd-daemon.h)
find_library(SYSTEMD_LIBRARY NAMES systemd)

include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(Systemd
  REQUIRED_VARS SYSTEMD_INCLUDE_DIR SYSTEMD_LIBRARY)

if(Systemd_FOUND AND NOT TARGET Systemd::libsystemd)
  add_library(Systemd::libsystemd UNKNOWN IMPORTED)
  set_target_properties(Systemd::libsystemd PROPERTIES
    IMPORTED_LOCATION "${SYSTEMD_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${SYSTEMD_INCLUDE_DIR}")
endif()

mark_as_advanced(SYSTEMD_INCLUDE_DIR SYSTEMD_LIBRARY)
