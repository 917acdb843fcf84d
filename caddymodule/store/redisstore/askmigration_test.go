package redisstore

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/internal/redistest"
)

// migration is one slot moved by hand, as redis-cli --cluster reshard
// moves each: IMPORTING on the target, MIGRATING on the source, keys
// moved with MIGRATE, then SETSLOT NODE everywhere. Between the first and
// the last step the source answers ASK for a key it no longer holds (and
// TRYAGAIN for a command over several keys of which it holds some).
type migration struct {
	t            *testing.T
	slot         int64
	src, dst     *redis.Client
	dstAddr      string
	srcID, dstID string
	primaries    []string
}

// startMigration puts the slot of key in migration from its primary to
// another.
func startMigration(t *testing.T, addrs, ids []string, key string) *migration {
	t.Helper()
	ctx := context.Background()
	first := redis.NewClient(&redis.Options{Addr: addrs[0]})
	defer first.Close()
	slot, err := first.ClusterKeySlot(ctx, key).Result()
	if err != nil {
		t.Fatal(err)
	}
	owner := ""
	slots, err := first.ClusterSlots(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range slots {
		if int64(s.Start) <= slot && slot <= int64(s.End) {
			owner = s.Nodes[0].Addr
		}
	}
	m := &migration{t: t, slot: slot, primaries: addrs}
	for i, a := range addrs {
		switch {
		case a == owner:
			m.src, m.srcID = redis.NewClient(&redis.Options{Addr: a}), ids[i]
		case m.dst == nil:
			m.dst, m.dstID, m.dstAddr = redis.NewClient(&redis.Options{Addr: a}), ids[i], a
		}
	}
	if m.src == nil {
		t.Fatalf("no primary serves slot %d (owner %q)", slot, owner)
	}
	t.Cleanup(func() { m.src.Close(); m.dst.Close() })
	m.must(m.dst.Do(ctx, "cluster", "setslot", slot, "importing", m.srcID).Err())
	m.must(m.src.Do(ctx, "cluster", "setslot", slot, "migrating", m.dstID).Err())
	return m
}

func (m *migration) must(err error) {
	m.t.Helper()
	if err != nil {
		m.t.Fatalf("slot %d: %v", m.slot, err)
	}
}

// move migrates up to n of the keys the source still holds in the slot
// (n < 0: all of them), and reports how many it moved.
func (m *migration) move(n int) int {
	m.t.Helper()
	ctx := context.Background()
	keys, err := m.src.ClusterGetKeysInSlot(ctx, int(m.slot), 1000).Result()
	m.must(err)
	if n >= 0 && n < len(keys) {
		keys = keys[:n]
	}
	if len(keys) == 0 {
		return 0
	}
	host, port, _ := net.SplitHostPort(m.dstAddr)
	args := []any{"migrate", host, port, "", 0, 5000, "keys"}
	for _, k := range keys {
		args = append(args, k)
	}
	m.must(m.src.Do(ctx, args...).Err())
	return len(keys)
}

// finish gives the slot to the target on every primary, the target first.
func (m *migration) finish() {
	m.t.Helper()
	ctx := context.Background()
	m.move(-1)
	order := []string{m.dstAddr, m.src.Options().Addr}
	for _, a := range m.primaries {
		if a != order[0] && a != order[1] {
			order = append(order, a)
		}
	}
	for _, a := range order {
		cl := redis.NewClient(&redis.Options{Addr: a})
		err := cl.Do(ctx, "cluster", "setslot", m.slot, "node", m.dstID).Err()
		cl.Close()
		m.must(err)
	}
}

// A slot migration in progress, by hand, under traffic: the slot of a
// user's record (the Lua scripts' keys) and the slot of another user's
// session copy (the look-ups' key) are set MIGRATING and IMPORTING, their
// keys moved a part at a time with MIGRATE, and the migrations finished.
// At each step look-ups, logins, phone bindings and logouts of keys in
// those slots run, beside traffic elsewhere: no live session is ever
// answered 401, and afterwards no change answered is lost.
func TestGatewayClusterSlotMigrating(t *testing.T) {
	c := redistest.StartCluster(t, nil)
	addrs, ids := clusterPrimaries(t, c)
	g := startGateway(t, "mode cluster", "address "+addrs[0], "cache_ttl off")

	var live []session
	for i := range 60 {
		live = append(live, g.mustLogin(fmt.Sprintf("early%d", i)))
	}
	var mover []session // the user whose record's slot migrates
	for i := range 4 {
		mover = append(mover, g.mustLogin(fmt.Sprintf("mover:%d", i)))
	}
	looked := live[0]             // the session whose copy's slot migrates; its user is early0
	phones := map[string]string{} // openid -> the phone a binding answered 200 set
	unsure := map[string]bool{}   // openids whose binding was answered 503 (bound or not)
	var dead []session
	codes := 0
	exercise := func(stage string) {
		t.Helper()
		note := func(what string, st int, body string, ok bool) {
			t.Helper()
			if !ok && st != http.StatusServiceUnavailable {
				t.Fatalf("%s, %s: %d %s", stage, what, st, body)
			}
			t.Logf("%s, %s: %d", stage, what, st)
		}
		for _, a := range append([]session{looked}, mover...) {
			st, body, err := g.get(a.token)
			if err != nil || st == http.StatusUnauthorized {
				t.Fatalf("%s, look-up of a live session of %s: %d %q %v", stage, a.openid, st, body, err)
			}
			note("look-up", st, body, st == http.StatusOK)
		}
		codes++
		a, st, body := g.login(fmt.Sprintf("mover:again%d", codes))
		note("login of the migrating user", st, body, st == http.StatusOK)
		if st == http.StatusOK {
			mover = append(mover, a)
		}
		for _, user := range []struct {
			name string
			s    session
		}{{"mover", mover[len(mover)-1]}, {"early0", looked}} {
			st, body, _ := g.do("POST", "/wechat/phone", user.s.token, fmt.Sprintf(`{"code":"%s:phone%d"}`, user.name, codes))
			note("phone binding of "+user.name, st, body, st == http.StatusOK)
			if st == http.StatusOK {
				var ph struct{ PurePhoneNumber string }
				if err := json.Unmarshal([]byte(body), &ph); err != nil {
					t.Fatal(err)
				}
				phones[user.s.openid] = ph.PurePhoneNumber
			} else {
				unsure[user.s.openid] = true
			}
		}
		// A logout of the migrating user's oldest session.
		out := mover[0]
		mover = mover[1:]
		st, body, _ = g.do("POST", "/wechat/logout", out.token, "")
		note("logout of the migrating user", st, body, st == http.StatusNoContent)
		if st == http.StatusNoContent {
			dead = append(dead, out)
		}
	}

	tr := g.startTraffic(live[1:], 2, 1, "elsewhere")
	migs := []*migration{
		startMigration(t, addrs, ids, userKeyOf(mover[0].openid)),
		startMigration(t, addrs, ids, copyKey(looked.token)),
	}
	exercise("migrating, no key moved")
	for _, m := range migs {
		m.move(1)
	}
	exercise("migrating, one key moved")
	moved := 0
	for _, m := range migs {
		moved += m.move(-1)
	}
	exercise("migrating, every key moved, " + strconv.Itoa(moved+2) + " in all")
	for _, m := range migs {
		m.finish()
	}
	exercise("migrated")
	answered := tr.finish()
	c.WaitHealthy(30 * time.Second)

	served := func(a session) {
		t.Helper()
		if unsure[a.openid] && phones[a.openid] == "" {
			// Bound or not: only a 200 promised it. Served, either way.
			st, body, err := g.get(a.token)
			if err != nil || st != http.StatusOK {
				t.Fatalf("session of %s: %d %q %v", a.openid, st, body, err)
			}
			return
		}
		g.wantServed(a, phones[a.openid])
	}
	for _, a := range append(append(live, mover...), answered...) {
		served(a)
	}
	for _, a := range dead {
		g.wantDead(a)
	}
	t.Logf("slots %d and %d migrated; %d sessions of the migrating user live, %d logged out, %d logins elsewhere",
		migs[0].slot, migs[1].slot, len(mover), len(dead), len(answered))
}
