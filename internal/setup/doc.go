// Package setup is the one translation layer between the configuration file's types
// (internal/config) and the typed options of every face and mechanism: it turns a
// validated *config.Config into sso.Options, proxy.Options, directory.Config,
// store options, the doctor's diagnose.Options and the like. No other package
// outside config reads config's types.
//
// It owns that translation and nothing else: it must not serve requests, hold state,
// or check anything config has not already checked at load.
package setup
