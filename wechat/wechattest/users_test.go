package wechattest

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
)

// TestUsedCodesKeepOnlyTheCode pins that a remembered code does not keep
// the request it came in alive: the fake remembers every code it has
// seen, and a storm benchmark sends it millions.
func TestUsedCodesKeepOnlyTheCode(t *testing.T) {
	const n, requestSize = 5000, 8 << 10
	used := map[string]bool{}
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	before := heap()
	for i := range n {
		// A request of 8 KiB, the code a piece of it, as url.Query
		// and encoding/json give it.
		req := fmt.Sprintf("code=%s&%s", fmt.Sprintf("user%d", i), strings.Repeat("x", requestSize))
		code := req[len("code="):strings.IndexByte(req, '&')]
		if user, errcode := checkCode(code, used); errcode != 0 || user != fmt.Sprintf("user%d", i) {
			t.Fatalf("checkCode(%q) = %q, %d", code, user, errcode)
		}
	}
	grown := int64(heap()) - int64(before)
	runtime.KeepAlive(used)
	// The codes and the map: well under 1 MiB. The requests: 40 MiB.
	if grown > 8<<20 {
		t.Fatalf("%d remembered codes hold %d MiB: they keep their requests alive", n, grown>>20)
	}
}
