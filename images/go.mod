module tenant-provisioner.dev/images

go 1.24
