//go:build pprof

// Built only with -tags pprof (the benchmarks' profiling builds, never a release):
// KERBGATE_PPROF_ADDR, a loopback host:port, serves net/http/pprof there.

package main

import (
	"net"
	"net/http"
	_ "net/http/pprof"
	"os"
)

func init() {
	addr := os.Getenv("KERBGATE_PPROF_ADDR")
	if addr == "" {
		return
	}
	if host, _, err := net.SplitHostPort(addr); err != nil || !net.ParseIP(host).IsLoopback() {
		panic("KERBGATE_PPROF_ADDR must be a loopback host:port")
	}
	go func() { panic(http.ListenAndServe(addr, nil)) }()
}
