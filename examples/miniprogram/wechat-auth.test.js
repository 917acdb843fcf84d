'use strict';

// node --test: the client kit against a stubbed `wx` and a fake gateway
// (fakes.js). adapters.test.js runs the same flows through `uni` and `Taro`.

var test = require('node:test');
var assert = require('node:assert/strict');
var createClient = require('.').createClient; // the package's main: dist/index.js
var fakes = require('./fakes');

var BASE = fakes.BASE;
var KEY = 'test_session';
var fakeWx = fakes.fakeWx;
var path = fakes.path;
var gateway = fakes.gateway;
var unauth = fakes.unauth;

function setup(extra, clientOpts) {
  var g = gateway(extra);
  var w = fakeWx({ handler: g.handle });
  var c = createClient(Object.assign({ baseURL: BASE + '/', wx: w, storageKey: KEY }, clientOpts));
  return { g: g, w: w, c: c };
}

test('first use logs in, stores the token, then calls with Bearer', async function () {
  var s = setup();
  var res = await s.c.request({ url: '/api/orders', method: 'get', header: { 'X-Trace': '1' } });
  assert.equal(res.statusCode, 200);
  assert.deepEqual(res.data, { path: '/api/orders', token: 'tok1' });
  assert.equal(s.w.logins, 1);
  assert.deepEqual(s.w.requests.map(path), ['/wechat/login', '/api/orders']);
  var api = s.w.requests[1];
  assert.equal(api.method, 'GET');
  assert.equal(api.header.Authorization, 'Bearer tok1');
  assert.equal(api.header['X-Trace'], '1');
  assert.equal(s.w.store[KEY].token, 'tok1');
  assert.equal(s.w.store[KEY].openid, 'o_alice');
  assert.ok(s.w.store[KEY].expiresAt > Date.now() + 3500 * 1000);
});

test('a stored token is reused without logging in', async function () {
  var s = setup();
  s.g.valid.stored = true;
  s.w.store[KEY] = { token: 'stored', expiresAt: Date.now() + 3600 * 1000 };
  var res = await s.c.request({ url: '/api/a' });
  await s.c.request({ url: '/api/b' });
  assert.equal(res.data.token, 'stored');
  assert.equal(s.w.logins, 0);
  assert.deepEqual(s.w.requests.map(path), ['/api/a', '/api/b']);
  assert.ok(s.w.requests.every(function (r) { return r.header.Authorization === 'Bearer stored'; }));
});

test('concurrent first calls share one wx.login', async function () {
  var s = setup();
  var all = await Promise.all([1, 2, 3, 4, 5].map(function (i) {
    return s.c.request({ url: '/api/' + i });
  }));
  assert.equal(s.w.logins, 1);
  assert.equal(s.g.hits['/wechat/login'], 1);
  all.forEach(function (res, i) {
    assert.equal(res.statusCode, 200);
    assert.equal(res.data.path, '/api/' + (i + 1));
    assert.equal(res.data.token, 'tok1');
  });
});

test('401 unauthenticated: clears the token, logs in once, retries once', async function () {
  var s = setup();
  s.w.store[KEY] = { token: 'revoked', expiresAt: Date.now() + 3600 * 1000 };
  var res = await s.c.request({ url: '/api/me', method: 'POST', data: { a: 1 } });
  assert.equal(res.statusCode, 200);
  assert.equal(res.data.token, 'tok1');
  assert.equal(s.w.logins, 1);
  assert.deepEqual(s.w.requests.map(path), ['/api/me', '/wechat/login', '/api/me']);
  assert.equal(s.w.requests[0].header.Authorization, 'Bearer revoked');
  assert.equal(s.w.requests[2].header.Authorization, 'Bearer tok1');
  assert.deepEqual(s.w.requests[2].data, { a: 1 });
  assert.equal(s.w.store[KEY].token, 'tok1');
});

test('concurrent 401s share one re-login', async function () {
  var s = setup();
  s.w.store[KEY] = { token: 'revoked', expiresAt: Date.now() + 3600 * 1000 };
  var all = await Promise.all([s.c.request({ url: '/api/x' }), s.c.request({ url: '/api/y' }), s.c.request({ url: '/api/z' })]);
  assert.equal(s.w.logins, 1);
  all.forEach(function (res) {
    assert.equal(res.statusCode, 200);
    assert.equal(res.data.token, 'tok1');
  });
});

test('a second 401 is returned to the caller, not looped', async function () {
  // This gateway rejects every token on /api/locked.
  var s = setup(function (req, g) {
    // Guard: a looping client gets a 500 after a few tries, so the test fails instead of hanging.
    if (path(req) === '/api/locked') return g.hits['/api/locked'] > 4 ? { statusCode: 500, data: {} } : unauth();
  });
  var res = await s.c.request({ url: '/api/locked' });
  assert.equal(res.statusCode, 401);
  assert.equal(res.data.error, 'unauthenticated');
  assert.equal(s.w.logins, 2, 'first-use login plus exactly one re-login');
  assert.deepEqual(s.w.requests.map(path), ['/wechat/login', '/api/locked', '/wechat/login', '/api/locked']);
});

test('a 401 from an upstream app (other error code) is not a re-login', async function () {
  var s = setup(function (req) {
    if (path(req) === '/api/admin') return { statusCode: 401, data: { error: 'not_admin' } };
  });
  var res = await s.c.request({ url: '/api/admin' });
  assert.equal(res.statusCode, 401);
  assert.equal(res.data.error, 'not_admin');
  assert.equal(s.w.logins, 1);
  assert.equal(s.g.hits['/api/admin'], 1);
});

test('an expired stored token triggers a login before the request', async function () {
  var s = setup();
  s.g.valid.old = true; // the gateway would still take it, but the client knows it has expired
  s.w.store[KEY] = { token: 'old', expiresAt: Date.now() - 1000 };
  var res = await s.c.request({ url: '/api/a' });
  assert.equal(res.data.token, 'tok1');
  assert.deepEqual(s.w.requests.map(path), ['/wechat/login', '/api/a']);
  assert.equal(s.w.requests[1].header.Authorization, 'Bearer tok1');
});

test('a token within the expiry skew counts as expired', async function () {
  var t = 1000000;
  var s = setup(null, { now: function () { return t; }, expirySkewMs: 60000 });
  s.g.valid.old = true;
  s.w.store[KEY] = { token: 'old', expiresAt: t + 30000 };
  var res = await s.c.request({ url: '/api/a' });
  assert.equal(res.data.token, 'tok1');
  assert.equal(s.w.store[KEY].expiresAt, t + 3600 * 1000);
});

test('bindPhone with the new code form posts {code} with Bearer', async function () {
  var posted;
  var s = setup(function (req) {
    if (path(req) === '/wechat/phone') {
      posted = req;
      return { statusCode: 200, data: { phoneNumber: '+8613800001111', purePhoneNumber: '13800001111', countryCode: '86' } };
    }
  });
  await s.c.ensureLogin();
  var r = await s.c.bindPhone({ type: 'getphonenumber', detail: { errMsg: 'getPhoneNumber:ok', code: 'pc1' } });
  assert.equal(r.purePhoneNumber, '13800001111');
  assert.equal(posted.method, 'POST');
  assert.deepEqual(posted.data, { code: 'pc1' });
  assert.equal(posted.header.Authorization, 'Bearer tok1');
  assert.equal(posted.header['Content-Type'], 'application/json');
  assert.equal(s.w.store[KEY].hasPhone, true);
});

test('bindPhone with the legacy form posts {encryptedData, iv} without logging in', async function () {
  var posted;
  var s = setup(function (req) {
    if (path(req) === '/wechat/phone') {
      posted = req;
      return { statusCode: 200, data: { phoneNumber: '13800001111', purePhoneNumber: '13800001111', countryCode: '86' } };
    }
  });
  await s.c.ensureLogin();
  var loginsBefore = s.w.logins;
  var r = await s.c.bindPhone({ detail: { errMsg: 'getPhoneNumber:ok', encryptedData: 'ZW5j', iv: 'aXY=' } });
  assert.equal(r.countryCode, '86');
  assert.deepEqual(posted.data, { encryptedData: 'ZW5j', iv: 'aXY=' });
  assert.equal(posted.header.Authorization, 'Bearer tok1');
  assert.equal(s.w.logins, loginsBefore, 'no login between the tap and the post');
});

test('legacy form answered 400 decrypt_failed: logs in again, rejects decrypt_failed, next tap works', async function () {
  var fail = true;
  var s = setup(function (req) {
    if (path(req) === '/wechat/phone') {
      if (fail) return { statusCode: 400, data: { error: 'decrypt_failed', message: 'cannot decrypt' } };
      return { statusCode: 200, data: { phoneNumber: '13800001111', purePhoneNumber: '13800001111', countryCode: '86' } };
    }
  });
  await s.c.ensureLogin();
  var ev = { detail: { errMsg: 'getPhoneNumber:ok', encryptedData: 'ZW5j', iv: 'aXY=' } };
  await assert.rejects(s.c.bindPhone(ev), function (err) {
    assert.ok(err instanceof Error);
    assert.equal(err.code, 'decrypt_failed');
    assert.equal(err.statusCode, 400);
    assert.equal(err.tapAgain, true);
    assert.match(err.message, /tap the button again/);
    return true;
  });
  assert.equal(s.g.hits['/wechat/phone'], 1, 'the stale data is not posted twice');
  assert.equal(s.w.logins, 2, 'a fresh login happened after the failure');
  assert.equal(s.w.store[KEY].token, 'tok2');
  fail = false;
  var r = await s.c.bindPhone(ev);
  assert.equal(r.purePhoneNumber, '13800001111');
  assert.equal(s.w.requests[s.w.requests.length - 1].header.Authorization, 'Bearer tok2');
});

test('legacy form with no valid session: no post, logs in, asks for another tap', async function () {
  var s = setup();
  await assert.rejects(s.c.bindPhone({ detail: { encryptedData: 'ZW5j', iv: 'aXY=' } }), function (err) {
    assert.equal(err.code, 'unauthenticated');
    assert.equal(err.tapAgain, true);
    return true;
  });
  assert.equal(s.g.hits['/wechat/phone'], undefined);
  assert.equal(s.w.store[KEY].token, 'tok1');
});

test('bindPhone when the user denied: phone_denied, no request', async function () {
  var s = setup();
  for (var msg of ['getPhoneNumber:fail user deny', 'getPhoneNumber:fail:user deny', 'getPhoneNumber:fail no permission']) {
    await assert.rejects(s.c.bindPhone({ detail: { errMsg: msg } }), function (err) {
      assert.equal(err.code, 'phone_denied');
      assert.equal(err.errMsg, msg);
      return true;
    });
  }
  assert.equal(s.w.requests.length, 0);
  assert.equal(s.w.logins, 0);
});

test('bindPhone surfaces gateway errors with code and statusCode', async function () {
  var s = setup(function (req) {
    if (path(req) === '/wechat/phone') return { statusCode: 503, data: { error: 'wechat_unavailable', message: 'WeChat is unreachable' } };
  });
  await assert.rejects(s.c.bindPhone({ detail: { code: 'pc1' } }), function (err) {
    assert.equal(err.code, 'wechat_unavailable');
    assert.equal(err.statusCode, 503);
    assert.equal(err.message, 'WeChat is unreachable');
    return true;
  });
});

test('wx.login failure rejects with wx_login_failed and sends nothing', async function () {
  var s = setup();
  s.w.loginFail = 'login:fail network';
  await assert.rejects(s.c.request({ url: '/api/a' }), function (err) {
    assert.equal(err.code, 'wx_login_failed');
    assert.match(err.message, /login:fail network/);
    return true;
  });
  assert.equal(s.w.requests.length, 0);
  // The failed login is not cached: the next call logs in afresh.
  s.w.loginFail = null;
  var res = await s.c.request({ url: '/api/a' });
  assert.equal(res.statusCode, 200);
  assert.equal(s.w.logins, 2);
});

test('gateway 401 invalid_code on login rejects with the code and status', async function () {
  var s = setup(function (req) {
    if (path(req) === '/wechat/login') return { statusCode: 401, data: { error: 'invalid_code', message: 'the login code is invalid or used' } };
  });
  await assert.rejects(s.c.request({ url: '/api/a' }), function (err) {
    assert.ok(err instanceof Error);
    assert.equal(err.code, 'invalid_code');
    assert.equal(err.statusCode, 401);
    assert.equal(err.message, 'the login code is invalid or used');
    return true;
  });
  assert.equal(s.g.hits['/api/a'], undefined);
  assert.equal(s.w.store[KEY], undefined);
});

test('a non-JSON error answer still rejects with an http_ code', async function () {
  var s = setup(function (req) {
    if (path(req) === '/wechat/login') return { statusCode: 502, data: '<html>Bad Gateway</html>' };
  });
  await assert.rejects(s.c.login(), function (err) {
    assert.equal(err.code, 'http_502');
    assert.equal(err.statusCode, 502);
    return true;
  });
});

test('a network failure rejects with network_error', async function () {
  var s = setup(function (req) {
    if (path(req) === '/api/a') return { fail: 'request:fail timeout' };
  });
  await assert.rejects(s.c.request({ url: '/api/a' }), function (err) {
    assert.equal(err.code, 'network_error');
    assert.match(err.message, /timeout/);
    return true;
  });
});

test('a lost connection is retried once for GET and for the login, never for POST', async function () {
  var drops = {};
  function dropFirst(p) {
    return function (req) {
      if (path(req) === p && !drops[p]) {
        drops[p] = true;
        return { fail: 'request:fail errcode:-101 cronet_error_code:-101 error_msg:net::ERR_CONNECTION_RESET' };
      }
    };
  }
  // GET: the reset costs nothing but a second try.
  var s = setup(function (req) {
    return dropFirst('/wechat/login')(req) || dropFirst('/api/a')(req);
  });
  var res = await s.c.request({ url: '/api/a' });
  assert.equal(res.statusCode, 200);
  assert.equal(s.g.hits['/wechat/login'], 2, 'the login was sent again (same code: same session)');
  assert.equal(s.g.hits['/api/a'], 2);
  assert.equal(s.w.logins, 1, 'one wx.login: the retry reuses the code');
  // POST: not repeated, the caller decides.
  drops = {};
  var p = setup(dropFirst('/api/pay'));
  await assert.rejects(p.c.request({ url: '/api/pay', method: 'POST', data: {} }), function (err) {
    assert.equal(err.code, 'network_error');
    return true;
  });
  assert.equal(p.g.hits['/api/pay'], 1);
  // A timeout is not repeated either.
  var n = 0;
  var q = setup(function (req) {
    if (path(req) === '/api/slow') { n++; return { fail: 'request:fail timeout' }; }
  });
  await assert.rejects(q.c.request({ url: '/api/slow' }));
  assert.equal(n, 1);
});

test('session() GETs the session and refreshes the stored expiry', async function () {
  var t = 5000000;
  var s = setup(null, { now: function () { return t; } });
  await s.c.ensureLogin();
  t += 1000;
  var body = await s.c.session();
  assert.equal(body.openid, 'o_alice');
  var req = s.w.requests[s.w.requests.length - 1];
  assert.equal(req.method, 'GET');
  assert.equal(path(req), '/wechat/session');
  assert.equal(req.header.Authorization, 'Bearer tok1');
  assert.equal(s.w.store[KEY].expiresAt, t + 7200 * 1000);
});

test('logout posts to /wechat/logout and clears storage', async function () {
  var s = setup();
  await s.c.ensureLogin();
  assert.equal(s.c.getToken(), 'tok1');
  await s.c.logout();
  var req = s.w.requests[s.w.requests.length - 1];
  assert.equal(path(req), '/wechat/logout');
  assert.equal(req.method, 'POST');
  assert.equal(req.header.Authorization, 'Bearer tok1');
  assert.equal(s.w.store[KEY], undefined);
  assert.equal(s.c.getToken(), '');
  assert.equal(s.g.valid.tok1, undefined, 'the gateway killed the token');
  // The next request logs in again.
  var res = await s.c.request({ url: '/api/a' });
  assert.equal(res.data.token, 'tok2');
});

test('logout without a session sends nothing', async function () {
  var s = setup();
  await s.c.logout();
  assert.equal(s.w.requests.length, 0);
});

test('path prefix is configurable', async function () {
  var g = gateway(function (req) {
    var p = path(req);
    if (p === '/auth/login') return { statusCode: 200, data: { token: 'pt', expires_in: 60 * 60, openid: 'o' } };
    if (p.indexOf('/wechat/') === 0) throw new Error('default prefix used: ' + p);
  });
  g.valid.pt = true;
  var w = fakeWx({ handler: g.handle });
  var c = createClient({ baseURL: BASE, wx: w, storageKey: KEY, pathPrefix: '/auth/' });
  var res = await c.request({ url: 'api/a' });
  assert.equal(res.data.token, 'pt');
  assert.deepEqual(w.requests.map(path), ['/auth/login', '/api/a']);
});

test('requests ask for HTTP/2 unless http2: false', async function () {
  var g = gateway();
  var w = fakeWx({ handler: g.handle });
  await createClient({ baseURL: BASE, wx: w, storageKey: KEY }).request({ url: '/api/me' });
  assert.ok(w.requests.length >= 2);
  w.requests.forEach(function (r) { assert.equal(r.enableHttp2, true, path(r)); });

  var w1 = fakeWx({ handler: gateway().handle });
  await createClient({ baseURL: BASE, wx: w1, storageKey: KEY, http2: false }).request({ url: '/api/me' });
  w1.requests.forEach(function (r) { assert.equal(r.enableHttp2, undefined, path(r)); });
});

test('the module needs a wx object and a baseURL', function () {
  assert.throws(function () { createClient({ baseURL: BASE }); }, /no `wx` object/);
  assert.throws(function () { createClient({ wx: fakeWx() }); }, /baseURL/);
});
