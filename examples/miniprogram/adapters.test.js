'use strict';

// node --test: the same flows through each platform adapter: native `wx`,
// uni-app's `uni` (callback style, uni.login with provider 'weixin') and
// Taro (promise style), with stubbed platform objects (fakes.js); then what
// is specific to each, and the phone-number buttons' client-side errors.

var test = require('node:test');
var assert = require('node:assert/strict');
var kit = require('.');
var fakes = require('./fakes');

var createClient = kit.createClient;
var BASE = fakes.BASE;
var KEY = 'adapter_session';
var path = fakes.path;
var unauth = fakes.unauth;

var PLATFORMS = [
  { name: 'wx', fake: fakes.fakeWx, option: 'wx' },
  { name: 'uni', fake: fakes.fakeUni, option: 'uni' },
  { name: 'Taro', fake: fakes.fakeTaro, option: 'taro' }
];

function setupOn(p, extra, clientOpts) {
  var g = fakes.gateway(extra);
  var f = p.fake({ handler: g.handle });
  var opts = { baseURL: BASE, storageKey: KEY };
  opts[p.option] = f;
  var c = createClient(Object.assign(opts, clientOpts));
  return { g: g, f: f, c: c };
}

function phoneAnswer(posted) {
  return function (req) {
    if (path(req) === '/wechat/phone') {
      posted.push(req);
      return { statusCode: 200, data: { phoneNumber: '13800001111', purePhoneNumber: '13800001111', countryCode: '86' } };
    }
  };
}

PLATFORMS.forEach(function (p) {
  test(p.name + ': first use logs in, stores the token, then calls with Bearer over HTTP/2', async function () {
    var s = setupOn(p, null, { timeout: 7000 });
    var res = await s.c.request({ url: '/api/orders', header: { 'X-Trace': '1', authorization: 'Bearer forged' } });
    assert.equal(res.statusCode, 200);
    assert.deepEqual(res.data, { path: '/api/orders', token: 'tok1' });
    assert.deepEqual(Object.keys(res).sort(), ['data', 'header', 'statusCode']);
    assert.equal(s.f.logins, 1);
    assert.deepEqual(s.f.requests.map(path), ['/wechat/login', '/api/orders']);
    var login = s.f.requests[0];
    assert.equal(login.method, 'POST');
    assert.deepEqual(login.data, { code: 'code1' });
    var api = s.f.requests[1];
    assert.equal(api.method, 'GET');
    assert.deepEqual(api.header, { 'X-Trace': '1', Authorization: 'Bearer tok1' });
    s.f.requests.forEach(function (r) {
      assert.equal(r.enableHttp2, true);
      assert.equal(r.timeout, 7000);
    });
    assert.equal(s.f.loginOptions[0].timeout, 7000);
    assert.equal(s.f.store[KEY].token, 'tok1');
    assert.equal(s.f.store[KEY].openid, 'o_alice');
    assert.equal(s.c.getToken(), 'tok1');
    assert.equal(s.c.getSession().hasPhone, false);
  });

  test(p.name + ': a stored token is reused; storage read through the platform', async function () {
    var s = setupOn(p);
    s.g.valid.stored = true;
    s.f.store[KEY] = JSON.stringify({ token: 'stored', expiresAt: Date.now() + 3600 * 1000 }); // a string, as some runtimes keep it
    var res = await s.c.request({ url: '/api/a' });
    assert.equal(res.data.token, 'stored');
    assert.equal(s.f.logins, 0);
  });

  test(p.name + ': 401 unauthenticated logs in again once and retries once', async function () {
    var s = setupOn(p);
    s.f.store[KEY] = { token: 'revoked', expiresAt: Date.now() + 3600 * 1000 };
    var res = await s.c.request({ url: '/api/me', method: 'POST', data: { a: 1 } });
    assert.equal(res.statusCode, 200);
    assert.equal(res.data.token, 'tok1');
    assert.equal(s.f.logins, 1);
    assert.deepEqual(s.f.requests.map(path), ['/api/me', '/wechat/login', '/api/me']);
    assert.equal(s.f.requests[2].header.Authorization, 'Bearer tok1');
    assert.deepEqual(s.f.requests[2].data, { a: 1 });
    assert.equal(s.f.store[KEY].token, 'tok1');
  });

  test(p.name + ': a second 401 goes back to the caller', async function () {
    var s = setupOn(p, function (req, g) {
      if (path(req) === '/api/locked') return g.hits['/api/locked'] > 4 ? { statusCode: 500, data: {} } : unauth();
    });
    var res = await s.c.request({ url: '/api/locked' });
    assert.equal(res.statusCode, 401);
    assert.equal(s.f.logins, 2);
    assert.equal(s.g.hits['/api/locked'], 2);
  });

  test(p.name + ': concurrent first calls share one login', async function () {
    var s = setupOn(p);
    var all = await Promise.all([1, 2, 3].map(function (i) {
      return s.c.request({ url: '/api/' + i });
    }));
    assert.equal(s.f.logins, 1);
    all.forEach(function (res) {
      assert.equal(res.data.token, 'tok1');
    });
  });

  test(p.name + ': a failed login rejects wx_login_failed with errMsg and sends nothing', async function () {
    var s = setupOn(p);
    s.f.loginFail = 'login:fail network';
    await assert.rejects(s.c.request({ url: '/api/a' }), function (err) {
      assert.ok(kit.isWechatAuthError(err));
      assert.equal(err.code, 'wx_login_failed');
      assert.equal(err.errMsg, 'login:fail network');
      return true;
    });
    assert.equal(s.f.requests.length, 0);
  });

  test(p.name + ': a lost connection: GET retried once, then network_error with errMsg', async function () {
    var drops = 0;
    var s = setupOn(p, function (req) {
      if (path(req) === '/api/a' && drops++ === 0) return { fail: 'request:fail net::ERR_CONNECTION_RESET' };
      if (path(req) === '/api/down') return { fail: 'request:fail net::ERR_CONNECTION_REFUSED' };
    });
    var res = await s.c.request({ url: '/api/a' });
    assert.equal(res.statusCode, 200);
    assert.equal(s.g.hits['/api/a'], 2);
    await assert.rejects(s.c.request({ url: '/api/down' }), function (err) {
      assert.equal(err.code, 'network_error');
      assert.equal(err.errMsg, 'request:fail net::ERR_CONNECTION_REFUSED');
      return true;
    });
    assert.equal(s.g.hits['/api/down'], 2);
  });

  test(p.name + ': getPhoneNumber posts {code} with Bearer and marks the phone bound', async function () {
    var posted = [];
    var s = setupOn(p, phoneAnswer(posted));
    await s.c.ensureLogin();
    var r = await s.c.bindPhone({ type: 'getphonenumber', detail: { errMsg: 'getPhoneNumber:ok', code: 'pc1' } });
    assert.deepEqual(r, { phoneNumber: '13800001111', purePhoneNumber: '13800001111', countryCode: '86' });
    assert.equal(posted.length, 1);
    assert.equal(posted[0].method, 'POST');
    assert.deepEqual(posted[0].data, { code: 'pc1' });
    assert.equal(posted[0].header.Authorization, 'Bearer tok1');
    assert.equal(s.f.store[KEY].hasPhone, true);
  });

  test(p.name + ': getRealtimePhoneNumber posts its code to the same endpoint', async function () {
    var posted = [];
    var s = setupOn(p, phoneAnswer(posted));
    // The real-time button's event: only a code (and errMsg) in its detail.
    var r = await s.c.bindPhone({ type: 'getrealtimephonenumber', detail: { errMsg: 'getRealtimePhoneNumber:ok', code: 'rt1' } });
    assert.equal(r.purePhoneNumber, '13800001111');
    assert.deepEqual(posted.map(path), ['/wechat/phone']);
    assert.deepEqual(posted[0].data, { code: 'rt1' });
    assert.equal(posted[0].header.Authorization, 'Bearer tok1', 'logged in first');
    // The detail alone works too (a Taro or uni-app handler may pass e.detail).
    await s.c.bindPhone({ code: 'rt2' });
    assert.deepEqual(posted[1].data, { code: 'rt2' });
    assert.equal(s.f.logins, 1);
  });

  test(p.name + ': no quota (errno 1400001) rejects phone_quota_exceeded and sends nothing', async function () {
    var s = setupOn(p);
    var details = [
      { errMsg: 'getPhoneNumber:fail no quota', errno: 1400001 },
      { errMsg: 'getRealtimePhoneNumber:fail no quota', errno: 1400001 },
      { errMsg: 'getPhoneNumber:fail', errno: '1400001' },
      { errMsg: 'getRealtimePhoneNumber:fail no quota' } // a base library without errno
    ];
    for (var i = 0; i < details.length; i++) {
      var d = details[i];
      await assert.rejects(s.c.bindPhone({ detail: d }), function (err) {
        assert.ok(kit.isWechatAuthError(err));
        assert.equal(err.code, 'phone_quota_exceeded');
        assert.equal(err.errMsg, d.errMsg);
        if (d.errno !== undefined) assert.equal(err.errno, 1400001);
        else assert.equal(err.errno, undefined);
        assert.match(err.message, /quota/);
        return true;
      });
    }
    assert.equal(s.f.requests.length, 0);
    assert.equal(s.f.logins, 0);
  });

  test(p.name + ': a refusal rejects phone_denied and sends nothing', async function () {
    var s = setupOn(p);
    var details = [
      { errMsg: 'getPhoneNumber:fail user deny' },
      { errMsg: 'getRealtimePhoneNumber:fail user deny' },
      { errMsg: 'getPhoneNumber:fail:user deny' },
      { errMsg: 'getPhoneNumber:fail api scope is not declared in the privacy agreement', errno: 112 },
      { errno: 104 }
    ];
    for (var i = 0; i < details.length; i++) {
      var d = details[i];
      await assert.rejects(s.c.bindPhone({ detail: d }), function (err) {
        assert.equal(err.code, 'phone_denied');
        assert.equal(err.errMsg, d.errMsg || '');
        assert.equal(err.errno, d.errno);
        return true;
      });
    }
    assert.equal(s.f.requests.length, 0);
  });

  test(p.name + ': logout clears storage and kills the token', async function () {
    var s = setupOn(p);
    await s.c.ensureLogin();
    await s.c.logout();
    assert.equal(s.f.store[KEY], undefined);
    assert.equal(s.c.getSession(), null);
    assert.equal(s.g.valid.tok1, undefined);
  });
});

// ---- what is specific to each platform ----------------------------------------

test('uni: uni.login is asked for the weixin provider, with callbacks', async function () {
  var s = setupOn(PLATFORMS[1]);
  await s.c.ensureLogin();
  var o = s.f.loginOptions[0];
  assert.equal(o.provider, 'weixin');
  assert.equal(typeof o.success, 'function');
  assert.equal(typeof o.fail, 'function');
  assert.equal(typeof s.f.requests[0].success, 'function');
});

test('wx: wx.login is called with callbacks and no provider', async function () {
  var s = setupOn(PLATFORMS[0]);
  await s.c.ensureLogin();
  assert.equal(s.f.loginOptions[0].provider, undefined);
  assert.equal(typeof s.f.loginOptions[0].success, 'function');
});

test('Taro: promise style, no callbacks handed over (the fake throws on them)', async function () {
  var s = setupOn(PLATFORMS[2], null, { http2: false });
  var res = await s.c.request({ url: '/api/a' });
  assert.equal(res.statusCode, 200);
  assert.deepEqual(s.f.loginOptions, [{}]);
  s.f.requests.forEach(function (r) {
    assert.equal(r.success, undefined);
    assert.equal(r.fail, undefined);
    assert.equal(r.enableHttp2, undefined);
  });
});

test('Taro: a rejection that is an Error (an interceptor threw) is a network_error with its message', async function () {
  var s = setupOn(PLATFORMS[2]);
  await s.c.ensureLogin();
  s.f.request = function () {
    return Promise.reject(new Error('interceptor refused'));
  };
  await assert.rejects(s.c.request({ url: '/api/a', method: 'POST' }), function (err) {
    assert.equal(err.code, 'network_error');
    assert.equal(err.message, 'interceptor refused');
    return true;
  });
  s.f.request = function () {
    throw new Error('thrown synchronously');
  };
  await assert.rejects(s.c.request({ url: '/api/a', method: 'POST' }), /thrown synchronously/);
});

test('Taro: a login answer without a code is wx_login_failed', async function () {
  var s = setupOn(PLATFORMS[2]);
  s.f.login = function () {
    return Promise.resolve({ errMsg: 'login:ok' });
  };
  await assert.rejects(s.c.login(), function (err) {
    assert.equal(err.code, 'wx_login_failed');
    return true;
  });
});

test('the global wx is the default platform', async function () {
  var g = fakes.gateway();
  global.wx = fakes.fakeWx({ handler: g.handle });
  try {
    var c = createClient({ baseURL: BASE, storageKey: KEY });
    var res = await c.request({ url: '/api/a' });
    assert.equal(res.data.token, 'tok1');
    assert.equal(global.wx.logins, 1);
  } finally {
    delete global.wx;
  }
});

test('options name one platform, and a platform object that is not one is refused', function () {
  var f = fakes.fakeWx();
  assert.throws(function () {
    createClient({ baseURL: BASE, wx: f, uni: fakes.fakeUni() });
  }, /one of options.wx, options.uni and options.taro/);
  assert.throws(function () {
    createClient({ baseURL: BASE, taro: { login: function () {} } });
  }, /options.taro has no request\(\)/);
  assert.throws(function () {
    createClient({ baseURL: BASE, uni: {} });
  }, /options.uni has no login\(\)/);
  assert.throws(function () {
    createClient({ baseURL: BASE });
  }, /no `wx` object.*options.uni.*options.taro/);
});

test('isWechatAuthError tells the kit errors from others', async function () {
  var s = setupOn(PLATFORMS[0]);
  var err = await s.c.bindPhone({ detail: { errMsg: 'getPhoneNumber:fail user deny' } }).catch(function (e) {
    return e;
  });
  assert.ok(err instanceof Error);
  assert.equal(err.name, 'WechatAuthError');
  assert.equal(kit.isWechatAuthError(err), true);
  assert.equal(kit.isWechatAuthError(new Error('x')), false);
  assert.equal(kit.isWechatAuthError({ code: 'phone_denied' }), false);
  assert.equal(kit.isWechatAuthError(null), false);
  assert.equal(kit.isWechatAuthError('phone_denied'), false);
});
