package redisstore

import (
	"regexp"
	"strings"
	"testing"
)

// TestRedisStoreScriptsDeclareKeys: every key a script touches comes from
// KEYS (Redis Cluster's rule), read from the scripts' source.
func TestRedisStoreScriptsDeclareKeys(t *testing.T) {
	call := regexp.MustCompile(`redis\.call\('(\w+)'(?:, ([^,)]+))?`)
	keyless := map[string]bool{"TIME": true, "PUBLISH": true}
	// The helpers' parameters, which their callers fill from KEYS.
	aliases := map[string]bool{"tkey": true, "ukey": true}
	for _, src := range []string{prelude, createUserSrc, setCopySrc, deleteSrc, logoutEndSrc, revokeEndSrc, bindPhoneSrc, countSrc} {
		for _, m := range call.FindAllStringSubmatch(src, -1) {
			if keyless[m[1]] {
				continue
			}
			if !strings.HasPrefix(m[2], "KEYS[") && !aliases[m[2]] {
				t.Errorf("redis.call('%s', %s): not a declared key", m[1], m[2])
			}
		}
	}
}
