# FindHttpParser.cmake: locates http-parser (Debian's libhttp-parser-dev, the
# HTTP parser of Node.js up to v12), which ships no CMake config.
#
#   HttpParser::HttpParser   imported target
#
# Sets HttpParser_FOUND, HttpParser_VERSION, HttpParser_INCLUDE_DIR.

find_path(HttpParser_INCLUDE_DIR NAMES http_parser.h)
find_library(HttpParser_LIBRARY NAMES http_parser)

if(HttpParser_INCLUDE_DIR AND EXISTS "${HttpParser_INCLUDE_DIR}/http_parser.h")
  foreach(_part MAJOR MINOR PATCH)
    file(STRINGS "${HttpParser_INCLUDE_DIR}/http_parser.h" _line
         REGEX "^#define HTTP_PARSER_VERSION_${_part} [0-9]+")
    string(REGEX REPLACE ".* ([0-9]+).*" "\\1" _v_${_part} "${_line}")
  endforeach()
  set(HttpParser_VERSION "${_v_MAJOR}.${_v_MINOR}.${_v_PATCH}")
endif()

include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(HttpParser
  REQUIRED_VARS HttpParser_INCLUDE_DIR HttpParser_LIBRARY
  VERSION_VAR HttpParser_VERSION)

if(HttpParser_FOUND AND NOT TARGET HttpParser::HttpParser)
  add_library(HttpParser::HttpParser UNKNOWN IMPORTED)
  set_target_properties(HttpParser::HttpParser PROPERTIES
    IMPORTED_LOCATION "${HttpParser_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${HttpParser_INCLUDE_DIR}")
endif()

mark_as_advanced(HttpParser_INCLUDE_DIR HttpParser_LIBRARY)
