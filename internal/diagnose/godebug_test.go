// The test domain's directory CA is Samba's own, whose serial number can be negative;
// test binaries accept it as the kerbgate binary does (cmd/kerbgate/main.go).

//go:debug x509negativeserial=1
package diagnose
