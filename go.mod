module pedos.dev/updates

go 1.26.0

require (
	github.com/ProtonMail/go-crypto v1.5.2
	github.com/google/rpmpack v0.7.1
	github.com/mdlayher/vsock v1.4.0
	golang.org/x/sys v0.50.0
)

require (
	github.com/cavaliergopher/cpio v1.0.1 // indirect
	github.com/cloudflare/circl v1.6.3 // indirect
	github.com/klauspost/compress v1.18.0 // indirect
	github.com/klauspost/pgzip v1.2.6 // indirect
	github.com/mdlayher/socket v0.8.0 // indirect
	github.com/ulikunitz/xz v0.5.12 // indirect
	golang.org/x/crypto v0.58.0 // indirect
	golang.org/x/net v0.62.0 // indirect
	golang.org/x/sync v0.24.0 // indirect
)
