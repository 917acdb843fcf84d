// Package alipay is the wechat_auth.platforms.alipay module: Alipay mini
// programs, over the client in package platforms/alipay of this module.
//
// Alipay differs from WeChat: no app secret and no session key. Every
// call is signed RSA2 with the app's private key, every answer verified
// with Alipay's public key before it is read, and the phone number comes
// as my.getPhoneNumber's {response, sign}: the sign verified first, then
// the response decrypted with the app's content key (aes_key). There is
// no session-key sealed data, so the platform is not a platform.Sealer:
// /decrypt and the session-key grace do not apply.
package alipay

import (
	"crypto/rsa"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"go.uber.org/zap"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/internal/caddyconf"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/platform"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/platforms/alipay"
)

func init() {
	caddy.RegisterModule(Module{})
}

// Module is the Alipay platform with its keys. app_id and api_base are
// the handler's; Alipay has no app_secret.
type Module struct {
	// Path of the app's RSA private key (应用私钥), PEM (PKCS#1 "RSA
	// PRIVATE KEY" or PKCS#8 "PRIVATE KEY") or the bare base64 Alipay's
	// key tool prints; at least 2048 bits. It signs our calls (RSA2).
	// Required; placeholders are resolved at provision.
	AppPrivateKeyFile string `json:"app_private_key_file,omitempty"`

	// Path of Alipay's RSA public key (支付宝公钥, public-key mode), PEM
	// ("PUBLIC KEY" or "RSA PUBLIC KEY") or bare base64; at least 2048
	// bits. It checks Alipay's answers and phone payloads. Required;
	// placeholders are resolved at provision.
	AlipayPublicKeyFile string `json:"alipay_public_key_file,omitempty"`

	// The app's content key (接口内容加密方式, AES): base64 of 16 bytes, as
	// Alipay's console shows it. It decrypts phone numbers; without it
	// /phone answers 400. Placeholders such as {env.ALIPAY_AES_KEY} are
	// resolved at provision; the JSON config keeps the placeholder.
	// Default: none.
	AESKey string `json:"aes_key,omitempty"`

	privateKey *rsa.PrivateKey
	publicKey  *rsa.PublicKey
	aesKey     []byte
}

// CaddyModule returns the Caddy module information.
func (Module) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  platform.Namespace + ".alipay",
		New: func() caddy.Module { return new(Module) },
	}
}

// Info describes Alipay.
func (Module) Info() platform.Info {
	return platform.Info{
		Title:        "Alipay",
		LoginCall:    "my.getAuthCode",
		HeaderPrefix: "X-Alipay",
		APIBase:      alipay.DefaultBaseURL,
		NoSecret:     true,
		CheckAppID:   func(id string) error { return platform.CheckDigits("Alipay", id, 16, 16) },
	}
}

// Provision reads and checks the keys. Every error names the setting; none
// quotes a key.
func (m *Module) Provision(ctx caddy.Context) error {
	repl := caddy.NewReplacer()
	read := func(name, value string) ([]byte, error) {
		path, err := caddyconf.Resolve(repl, name, value)
		if err != nil {
			return nil, err
		}
		if path == "" {
			return nil, fmt.Errorf("platform alipay: %s is required", name)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			var pe *os.PathError
			if errors.As(err, &pe) {
				err = pe.Err
			}
			return nil, fmt.Errorf("platform alipay: %s: cannot read %q: %v", name, path, err)
		}
		return data, nil
	}
	data, err := read("app_private_key_file", m.AppPrivateKeyFile)
	if err != nil {
		return err
	}
	if m.privateKey, err = alipay.ParsePrivateKeyPEM(data); err != nil {
		return fmt.Errorf("platform alipay: app_private_key_file: %v", err)
	}
	if data, err = read("alipay_public_key_file", m.AlipayPublicKeyFile); err != nil {
		return err
	}
	if m.publicKey, err = alipay.ParsePublicKeyPEM(data); err != nil {
		return fmt.Errorf("platform alipay: alipay_public_key_file: %v", err)
	}
	if m.publicKey.Equal(&m.privateKey.PublicKey) {
		return errors.New("platform alipay: alipay_public_key_file holds the public half of app_private_key_file: it must be Alipay's public key (支付宝公钥), not the app's")
	}
	aes, err := caddyconf.ResolveSecret(repl, "aes_key", m.AESKey)
	if err != nil {
		return fmt.Errorf("platform alipay: %v", err)
	}
	if aes.IsZero() {
		ctx.Logger().Warn("platform alipay has no aes_key: /phone answers 400 until the app's content key is configured")
		return nil
	}
	if m.aesKey, err = alipay.ParseAESKey(aes.Reveal()); err != nil {
		// The parser's message describes the input without quoting it.
		return fmt.Errorf("platform alipay: aes_key: %v", err)
	}
	// The JSON config keeps the placeholder; a literal key is not
	// needed again, so nothing that dumps the module shows it.
	if !strings.Contains(m.AESKey, "{") {
		m.AESKey = ""
	}
	ctx.Logger().Debug("platform alipay keys loaded", zap.Int("app_key_bits", m.privateKey.N.BitLen()))
	return nil
}

// New returns the Alipay client of app, with the keys Provision read.
func (m *Module) New(app platform.App) (platform.Platform, error) {
	if m.privateKey == nil || m.publicKey == nil {
		return nil, errors.New("platform alipay: app_private_key_file and alipay_public_key_file are required")
	}
	opts := []alipay.Option{alipay.WithTimeout(app.Timeout)}
	if app.APIBase != "" {
		opts = append(opts, alipay.WithBaseURL(app.APIBase))
	}
	if app.Observe != nil {
		opts = append(opts, alipay.WithObserver(app.Observe))
	}
	if m.aesKey != nil {
		opts = append(opts, alipay.WithAESKey(m.aesKey))
	}
	return &Platform{client: alipay.NewClient(app.AppID, m.privateKey, m.publicKey, opts...), hasAESKey: m.aesKey != nil}, nil
}

// UnmarshalCaddyfile parses:
//
//	platform alipay {
//	    app_private_key_file   <path>
//	    alipay_public_key_file <path>
//	    aes_key                <base64>
//	}
func (m *Module) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // "alipay"
	if d.NextArg() {
		return d.Errf("platform alipay takes a block, not arguments; got %q", d.Val())
	}
	fields := map[string]*string{
		"app_private_key_file":   &m.AppPrivateKeyFile,
		"alipay_public_key_file": &m.AlipayPublicKeyFile,
		"aes_key":                &m.AESKey,
	}
	for d.NextBlock(0) {
		field, ok := fields[d.Val()]
		if !ok {
			return d.Errf("unrecognized platform alipay setting %q (app_private_key_file, alipay_public_key_file, aes_key)", d.Val())
		}
		if *field != "" {
			return d.Errf("platform alipay: %s given twice", d.Val())
		}
		if err := caddyconf.OneArg(d, field); err != nil {
			return err
		}
	}
	if m.AppPrivateKeyFile == "" || m.AlipayPublicKeyFile == "" {
		return d.Err("platform alipay needs app_private_key_file and alipay_public_key_file")
	}
	return nil
}

// Interface guards
var (
	_ platform.Module       = (*Module)(nil)
	_ caddy.Provisioner     = (*Module)(nil)
	_ caddyfile.Unmarshaler = (*Module)(nil)
)
