package config

import (
	"fmt"
	"os"
	"runtime"
	"strings"
)

// Secrets (the directory's bind password, the Redis password, an OpenID client
// secret) never stand in the configuration file: each is kept in a file only
// kerbgate's user can read, or in an environment variable. The two halves here, the
// check at load (secretFile, secretEnv) and the read at start-up (readSecret), are
// the only ones: every section uses them.

// secretFile decodes a field naming a file that holds a secret: a readable,
// non-empty file that neither its group nor others can read. It returns the absolute
// path, or "" when the field is absent or wrong (reported).
func secretFile(f *field) string {
	s, ok := f.str()
	if !ok {
		return ""
	}
	if s == "" {
		f.invalid("empty path")
		return ""
	}
	if abs, shown := resolvedPath(f, s); checkPasswordFile(f, abs, shown) {
		return abs
	}
	return ""
}

// secretEnv decodes a field naming an environment variable that holds a secret: a
// valid name, set and not empty in kerbgate's environment. It returns the name, or ""
// when the field is absent or wrong (reported).
func secretEnv(f *field) string {
	s, ok := f.str()
	if !ok {
		return ""
	}
	switch v, set := os.LookupEnv(s); {
	case !envName.MatchString(s):
		f.invalid("%s is not an environment variable name", describe(f.val))
	case !set:
		f.errorf("%s is not set in kerbgate's environment; expected %s", describe(f.val), f.expect)
	case v == "":
		f.errorf("%s is set but empty; expected %s", describe(f.val), f.expect)
	default:
		return s
	}
	return ""
}

// checkPasswordFile reports whether path is a readable, non-empty file that only its
// owner can read, reporting why not.
func checkPasswordFile(f *field, path, shown string) bool {
	if !checkReadable(f, path, shown, f.expect) {
		return false
	}
	st, err := os.Stat(path)
	if err != nil {
		f.errorf("%s cannot be read: %s; expected %s", shown, pathErrCause(err), f.expect).Err = err
		return false
	}
	if why := secretModeProblem(st.Mode()); why != "" {
		f.errorf("%s is %s; chmod 600 it (expected a file only kerbgate's user can read)", shown, why)
		return false
	}
	if st.Size() == 0 {
		f.errorf("%s is empty; expected %s", shown, f.expect)
		return false
	}
	return true
}

// secretModeProblem says who else may read a secret file of mode m, or "".
func secretModeProblem(m os.FileMode) string {
	// Windows has no such permission bits: Go reports every file as readable by all.
	switch {
	case runtime.GOOS == "windows":
		return ""
	case m.Perm()&0o004 != 0:
		return "readable by everyone"
	case m.Perm()&0o040 != 0:
		return "readable by its group"
	}
	return ""
}

// readSecret returns the secret of what (named in errors, never the secret): the
// contents of file without a trailing newline when file is set, else the value of
// the environment variable env; "" when neither is set. The file must still be
// readable by its owner only, and the secret must not be empty: an empty password
// is no authentication at all (an LDAP simple bind with one is anonymous).
func readSecret(what, file, env string) (string, error) {
	switch {
	case file != "":
		st, err := os.Stat(file)
		if err != nil {
			return "", fmt.Errorf("%s: %w", what, err)
		}
		if why := secretModeProblem(st.Mode()); why != "" {
			return "", fmt.Errorf("%s: %s is %s; chmod 600 it", what, file, why)
		}
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("%s: %w", what, err)
		}
		s := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
		if s == "" {
			return "", fmt.Errorf("%s: %s is empty", what, file)
		}
		return s, nil
	case env != "":
		v, ok := os.LookupEnv(env)
		if !ok {
			return "", fmt.Errorf("%s: environment variable %s is not set", what, env)
		}
		if v == "" {
			return "", fmt.Errorf("%s: environment variable %s is empty", what, env)
		}
		return v, nil
	}
	return "", nil
}
