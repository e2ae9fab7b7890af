package diagnose

import (
	"encoding/json"
	"fmt"
	"strings"
)

// PolicyHosts are the host names browsers must be allowed to send Negotiate
// credentials to: every accepted SPN's host and the host of every published
// application browsers sign in to with Negotiate.
func PolicyHosts(o Options) []string {
	seen := map[string]bool{}
	var out []string
	add := func(h string) {
		h = strings.ToLower(h)
		if h != "" && !seen[h] {
			seen[h] = true
			out = append(out, h)
		}
	}
	for _, spn := range o.SPNs {
		_, host, _ := strings.Cut(spn, "/")
		host, _, _ = strings.Cut(host, ":")
		add(host)
	}
	for _, a := range o.Apps {
		if a.IWA {
			add(a.Host)
		}
	}
	return out
}

// BrowserPolicy is one ready-to-use policy file.
type BrowserPolicy struct {
	Browser, Platform, Path, Format, Content string
}

// BrowserPolicies returns the Negotiate allowlist policies for Chrome, Edge and
// Firefox on Windows, macOS and Linux. kerbgate delegates to upstreams itself
// (S4U2Proxy), so browsers are never asked to forward tickets: no delegation
// allowlist is set.
func BrowserPolicies(hosts []string) []BrowserPolicy {
	list := strings.Join(hosts, ",")
	regEsc := strings.ReplaceAll(list, `\`, `\\`)
	chromeJSON, _ := json.MarshalIndent(map[string]any{"AuthServerAllowlist": list}, "", "  ")
	firefoxJSON, _ := json.MarshalIndent(map[string]any{"policies": map[string]any{
		"Authentication": map[string]any{"SPNEGO": hosts, "Locked": true}}}, "", "  ")
	plist := func(domain string) string {
		return fmt.Sprintf(`<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
  <key>AuthServerAllowlist</key>
  <string>%s</string>
</dict>
</plist>
<!-- install as a configuration profile payload for %s -->
`, xmlEscape(list), domain)
	}
	return []BrowserPolicy{
		{"Chrome", "Windows", `HKLM\SOFTWARE\Policies\Google\Chrome`, "reg",
			"Windows Registry Editor Version 5.00\r\n\r\n[HKEY_LOCAL_MACHINE\\SOFTWARE\\Policies\\Google\\Chrome]\r\n\"AuthServerAllowlist\"=\"" + regEsc + "\"\r\n"},
		{"Edge", "Windows", `HKLM\SOFTWARE\Policies\Microsoft\Edge`, "reg",
			"Windows Registry Editor Version 5.00\r\n\r\n[HKEY_LOCAL_MACHINE\\SOFTWARE\\Policies\\Microsoft\\Edge]\r\n\"AuthServerAllowlist\"=\"" + regEsc + "\"\r\n"},
		{"Chrome", "macOS", "/Library/Managed Preferences/com.google.Chrome.plist", "plist", plist("com.google.Chrome")},
		{"Edge", "macOS", "/Library/Managed Preferences/com.microsoft.Edge.plist", "plist", plist("com.microsoft.Edge")},
		{"Chrome", "Linux", "/etc/opt/chrome/policies/managed/kerbgate.json", "json", string(chromeJSON) + "\n"},
		{"Chromium", "Linux", "/etc/chromium/policies/managed/kerbgate.json", "json", string(chromeJSON) + "\n"},
		{"Edge", "Linux", "/etc/opt/edge/policies/managed/kerbgate.json", "json", string(chromeJSON) + "\n"},
		{"Firefox", "all", "policies.json (distribution directory), or about:config network.negotiate-auth.trusted-uris = " + list, "json", string(firefoxJSON) + "\n"},
	}
}

func xmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}
