// Package setup is the one translation layer between the configuration file's types
// (internal/config) and the typed options of every face and mechanism. NewPlan turns
// a validated *config.Config, once, into a Plan: sso and proxy plans, directory.Config,
// store options, the acceptor's configuration, the listener's limits and the like,
// with the secrets the file names read. No other package outside config reads
// config's types; package server builds kerbgate from the Plan alone.
//
// It owns that translation and nothing else: it must not serve requests, hold state,
// or check anything config has not already checked at load. What runs (keys, the
// replay cache, the directory client, cookie keys, the sign-in) is the caller's: it
// fills those fields of the Plan's options, and the faces' plans take them in their
// Options methods.
package setup
