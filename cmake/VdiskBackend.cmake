# vdisk_register_backend(<kind>)
# The one line that makes blockdev/<kind>/ a backend: its CMakeLists.txt builds the library
# vdisk_blockdev_<kind>, its register.h declares vdisk::blockdev::<kind>::Register() (pool kind
# and/or device URI scheme), and this call adds it to vdisk_backends, whose generated
# RegisterBuiltinBackends() (blockdev/backends.cc.in) calls every registered Register().
# blockdev/CMakeLists.txt adds every sub-folder that has a CMakeLists.txt, so nothing outside
# the backend's folder changes.
function(vdisk_register_backend kind)
  set_property(GLOBAL APPEND PROPERTY VDISK_BACKENDS ${kind})
endfunction()
