# verifyd_library(NAME SOURCES ... DEPS ...): one static library per source folder, so that
# the link graph enforces the one-way dependencies common <- core <- {storage, api} <- http <- server.
function(verifyd_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_library(${name} STATIC ${ARG_SOURCES})
  target_include_directories(${name} PUBLIC ${PROJECT_SOURCE_DIR}/src)
  target_link_libraries(${name} PUBLIC ${ARG_DEPS})
endfunction()
