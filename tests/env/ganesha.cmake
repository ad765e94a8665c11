# Fixture `nfs`: a real nfs-ganesha 4.3 (VFS FSAL) on 127.0.0.1 over reflink-capable XFS images,
#   from tests/env/ganesha.sh in ${CMAKE_BINARY_DIR}/test-env/nfs, on the first free ports from
#   2049 / 20048 (no rpcbind: clients name the ports). A test that needs it declares
#   `FIXTURES nfs` and sets ENVIRONMENT VDISK_NFS_DIR=${VDISK_NFS_DIR}; it then reads
#   $VDISK_NFS_DIR/nfs.env. Needs root (loop devices, mounts). If the server cannot start, nfs_up
#   FAILS with ganesha's log printed, and the tests that require it are not run.
set(VDISK_NFS_DIR ${CMAKE_BINARY_DIR}/test-env/nfs CACHE INTERNAL "test NFS server dir")

add_test(NAME nfs_up COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/ganesha.sh up ${VDISK_NFS_DIR})
set_tests_properties(nfs_up PROPERTIES FIXTURES_SETUP nfs LABELS "nfs;integration;root" TIMEOUT 120)

add_test(NAME nfs_down COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/ganesha.sh down ${VDISK_NFS_DIR})
set_tests_properties(nfs_down PROPERTIES FIXTURES_CLEANUP nfs LABELS "nfs;integration;root" TIMEOUT 120)
