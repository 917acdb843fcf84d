package alipay_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/internal/platformtest"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/platforms/alipay"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/platforms/alipay/alipaytest"
)

const appID = "2021000000000000"

// appKey is the app's key pair, made once: 2048-bit keys take a while.
var appKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

// alipayKey is the fake Alipay's key pair, shared by the tests' fakes.
var alipayKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

// newPair starts a fake and a client pointed at it, with the fake's
// Alipay key and content key.
func newPair(t *testing.T, opts ...alipay.Option) (*alipaytest.Server, *alipay.Client) {
	t.Helper()
	srv := alipaytest.NewServer(appID, &appKey().PublicKey, alipaytest.WithAlipayKey(alipayKey()))
	t.Cleanup(srv.Close)
	base := []alipay.Option{alipay.WithBaseURL(srv.URL), alipay.WithAESKey(srv.AESKey())}
	return srv, alipay.NewClient(appID, appKey(), srv.AlipayPublicKey(), append(base, opts...)...)
}

func ctx(t *testing.T) context.Context { return platformtest.Ctx(t) }

func apiErr(err error) *alipay.APIError {
	var ae *alipay.APIError
	if errors.As(err, &ae) {
		return ae
	}
	return nil
}

// needOpenSSL returns the openssl binary, or skips the test when there is
// none, unless CI is "true": CI must run the independent vectors.
func needOpenSSL(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("openssl")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("openssl is needed for the independent RSA2 vectors")
		}
		t.Skip("no openssl")
	}
	return p
}

// openssl runs openssl with args in dir, and fails the test on error.
func openssl(t *testing.T, dir string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(needOpenSSL(t), args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func write(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func read(t *testing.T, dir, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
