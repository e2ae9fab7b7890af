package main

import (
	"bufio"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/kerbgate/kerbgate/internal/secret"
)

// maxSecretLine bounds the line hash-secret reads from standard input.
const maxSecretLine = 4096

// hashSecretCmd is kerbgate hash-secret: it prints the argon2id hash of a client
// secret for sso.apps[].secret_hash. The secret is read from the first line of
// standard input (never from the command line, which would leave it in shell
// history and process listings); with --generate, kerbgate makes a random secret
// (32 bytes, base64url) and prints both:
//
//	client_secret: <secret for the application>
//	secret_hash: <hash for kerbgate's configuration>
func hashSecretCmd(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("hash-secret", flag.ContinueOnError)
	fs.SetOutput(stderr)
	generate := fs.Bool("generate", false, "generate a random client secret and print it with its hash")
	fs.Usage = func() {
		fmt.Fprint(stderr, `Usage:
  kerbgate hash-secret < secret-file     print the hash of the secret on the first line of stdin
  kerbgate hash-secret --generate        generate a client secret; print it and its hash
`)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintln(stderr, "kerbgate hash-secret: the secret is read from standard input, not from arguments (they would show in shell history and process lists)")
		return 2
	}

	var sec string
	if *generate {
		b := make([]byte, 32)
		if _, err := rand.Read(b); err != nil {
			fmt.Fprintf(stderr, "kerbgate hash-secret: %v\n", err)
			return 1
		}
		sec = base64.RawURLEncoding.EncodeToString(b)
	} else {
		var err error
		if sec, err = readSecretLine(stdin); err != nil {
			fmt.Fprintf(stderr, "kerbgate hash-secret: %v\n", err)
			return 1
		}
	}

	h, err := secret.Hash(sec)
	if err != nil {
		fmt.Fprintf(stderr, "kerbgate hash-secret: %v\n", err)
		return 1
	}
	if *generate {
		fmt.Fprintf(stdout, "client_secret: %s\nsecret_hash: %s\n", sec, h)
	} else {
		fmt.Fprintln(stdout, h)
	}
	return 0
}

// readSecretLine returns the first line of r without its line ending (LF or CRLF).
func readSecretLine(r io.Reader) (string, error) {
	br := bufio.NewReaderSize(io.LimitReader(r, maxSecretLine+2), maxSecretLine+2)
	line, err := br.ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("reading the secret from standard input: %w", err)
	}
	if err != nil && len(line) > maxSecretLine {
		return "", fmt.Errorf("the secret's line is longer than %d bytes", maxSecretLine)
	}
	line = strings.TrimSuffix(line, "\n")
	line = strings.TrimSuffix(line, "\r")
	if len(line) > maxSecretLine {
		return "", fmt.Errorf("the secret's line is longer than %d bytes", maxSecretLine)
	}
	if line == "" {
		return "", errors.New("empty secret: write the secret on the first line of standard input, or use --generate")
	}
	return line, nil
}
