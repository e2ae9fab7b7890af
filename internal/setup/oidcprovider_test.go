package setup

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kerbgate/kerbgate/internal/config"
	"github.com/kerbgate/kerbgate/internal/signin"
	"github.com/kerbgate/kerbgate/internal/signingkeys"
)

// The oidc_provider section becomes the provider's typed options: keys read from
// their file, each client with its group policy.
func TestOIDCProviderOptionsAreTyped(t *testing.T) {
	if OIDCProvider(&config.Config{}) != nil {
		t.Fatal("a plan without the section")
	}
	keys := filepath.Join(t.TempDir(), "keys.json")
	if _, err := signingkeys.Add(keys, time.Now()); err != nil {
		t.Fatal(err)
	}
	c := &config.Config{OIDCProvider: config.OIDCProvider{
		Enabled: true, Issuer: "https://sso.example.com/oidc", SigningKeysFile: keys,
		IDTokenTTL: time.Minute, AccessTokenTTL: 2 * time.Minute, RefreshTokenTTL: time.Hour,
		Clients: []config.OIDCClient{
			{ID: "wiki", SecretHash: "h", RedirectURIs: []string{"https://wiki.example.com/cb"}, AllowedGroups: []string{"S-1-5-32-544"}, Scopes: []string{"openid"},
				GroupNames: config.GroupNames{Include: []string{"staff"}, Prefixes: []string{"app-wiki-"}, Max: 40}},
			{ID: "spa", RedirectURIs: []string{"http://localhost/cb"}},
		},
	}}
	p := OIDCProvider(c)
	o, err := p.Options(nil)
	if err != nil {
		t.Fatal(err)
	}
	if o.Issuer != c.OIDCProvider.Issuer || len(o.SigningKeys) != 1 || o.IDTokenTTL != time.Minute ||
		o.AccessTokenTTL != 2*time.Minute || o.RefreshTokenTTL != time.Hour || len(o.Clients) != 2 {
		t.Fatalf("options %+v", o)
	}
	if w := o.Clients[0]; w.ID != "wiki" || w.SecretHash != "h" || w.Groups == nil || w.Groups.Any() || len(w.Scopes) != 1 {
		t.Errorf("wiki %+v", w)
	}
	if f := o.Clients[0].GroupNames; !reflect.DeepEqual(f, signin.GroupFilter{Include: []string{"staff"}, Prefixes: []string{"app-wiki-"}, Max: 40}) {
		t.Errorf("wiki's group_names became %+v", f)
	}
	if s := o.Clients[1]; s.SecretHash != "" || !s.Groups.Any() {
		t.Errorf("spa %+v", s)
	}

	c.OIDCProvider.SigningKeysFile = filepath.Join(t.TempDir(), "absent.json")
	if _, err := OIDCProvider(c).Options(nil); err == nil || !strings.HasPrefix(err.Error(), "oidc_provider.signing_keys_file: ") {
		t.Errorf("absent key file: %v", err)
	}
}
