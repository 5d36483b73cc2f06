# cmake --install: headers under include/keel, the library, and a CMake package so that a
# user's project can do find_package(Keel) and target_link_libraries(app Keel::keel).
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

install(FILES ${PROJECT_SOURCE_DIR}/include/keel/keel.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/keel)
foreach(layer ${KEEL_LAYERS})
  install(DIRECTORY ${PROJECT_SOURCE_DIR}/${layer}/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/keel/${layer}
          FILES_MATCHING PATTERN "*.h" PATTERN "stub" EXCLUDE)
endforeach()

install(TARGETS keel EXPORT KeelTargets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT KeelTargets NAMESPACE Keel:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/Keel)

configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/KeelConfig.cmake.in
  ${PROJECT_BINARY_DIR}/KeelConfig.cmake INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/Keel)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/KeelConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/KeelConfig.cmake ${PROJECT_BINARY_DIR}/KeelConfigVersion.cmake
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/Keel)
