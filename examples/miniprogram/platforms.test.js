'use strict';

// node --test: the other mini-program platforms. The same flows through the
// native QQ (`qq`), Douyin (`tt`), Kuaishou (`ks`), Baidu (`swan`) and
// Alipay (`my`) objects, with stubbed platform objects (fakes.js); then what
// is specific to each, uni-app and Taro builds for those platforms, and
// login({ force: true }).

var test = require('node:test');
var assert = require('node:assert/strict');
var kit = require('.');
var fakes = require('./fakes');

var createClient = kit.createClient;
var BASE = fakes.BASE;
var KEY = 'platform_session';
var path = fakes.path;
var unauth = fakes.unauth;

var NATIVE = [
  { name: 'QQ', option: 'qq', fake: fakes.fakeQq, kind: 'qq' },
  { name: 'Douyin', option: 'tt', fake: fakes.fakeTt, kind: 'douyin' },
  { name: 'Kuaishou', option: 'ks', fake: fakes.fakeKs, kind: 'kuaishou' },
  { name: 'Baidu', option: 'swan', fake: fakes.fakeSwan, kind: 'baidu' },
  { name: 'Alipay', option: 'my', fake: fakes.fakeMy, kind: 'alipay' }
];

var PHONE = { phoneNumber: '13800001111', purePhoneNumber: '13800001111', countryCode: '86' };

// What each platform's phone button (or, on Alipay, my.getPhoneNumber) gives,
// and what the kit must post for it.
var ALIPAY_RESPONSE = JSON.stringify({ response: 'Q0lQSEVS', sign: 'U0lH', sign_type: 'RSA2', encrypt_type: 'AES', charset: 'UTF-8' });
var PHONE_FORMS = {
  qq: { given: { detail: { errMsg: 'getPhoneNumber:ok', encryptedData: 'ZW5j', iv: 'aXY=' } }, posted: { encryptedData: 'ZW5j', iv: 'aXY=' } },
  // Douyin's newer button adds a code for another API: the sealed form goes.
  douyin: { given: { detail: { errMsg: 'getPhoneNumber:ok', encryptedData: 'ZW5j', iv: 'aXY=', code: 'ttcode' } }, posted: { encryptedData: 'ZW5j', iv: 'aXY=' } },
  kuaishou: { given: { detail: { errMsg: 'getPhoneNumber:ok', encryptedData: 'ZW5j', iv: 'aXY=' } }, posted: { encryptedData: 'ZW5j', iv: 'aXY=' } },
  baidu: { given: { detail: { errMsg: 'getPhoneNumber:ok', encryptedData: 'ZW5j', iv: 'aXY=' } }, posted: { encryptedData: 'ZW5j', iv: 'aXY=' } },
  // my.getPhoneNumber's success result, as the page gets it.
  alipay: { given: { response: ALIPAY_RESPONSE }, posted: { response: 'Q0lQSEVS', sign: 'U0lH' } }
};

function store(f, value) {
  f.store[KEY] = value;
}

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
      return { statusCode: 200, data: PHONE };
    }
  };
}

NATIVE.forEach(function (p) {
  test(p.name + ': first use logs in with the platform code, stores the token, then calls with Bearer', async function () {
    var s = setupOn(p, null, { timeout: 7000 });
    assert.equal(s.c.platform, p.kind);
    var res = await s.c.request({ url: '/api/orders', header: { 'X-Trace': '1', authorization: 'Bearer forged' } });
    assert.equal(res.statusCode, 200);
    assert.deepEqual(res.data, { path: '/api/orders', token: 'tok1' });
    assert.deepEqual(Object.keys(res).sort(), ['data', 'header', 'statusCode']);
    assert.equal(s.f.logins, 1);
    assert.deepEqual(s.f.requests.map(path), ['/wechat/login', '/api/orders']);
    assert.equal(s.f.requests[0].method, 'POST');
    assert.deepEqual(s.f.requests[0].data, { code: 'code1' }, 'only the code: no anonymousCode');
    assert.equal(s.f.requests[1].header.Authorization, 'Bearer tok1');
    assert.equal(s.f.requests[1].header['X-Trace'], '1');
    assert.equal(s.f.store[KEY].token, 'tok1');
    assert.equal(s.c.getToken(), 'tok1');
  });

  test(p.name + ': a stored token is reused', async function () {
    var s = setupOn(p);
    s.g.valid.stored = true;
    store(s.f, { token: 'stored', expiresAt: Date.now() + 3600 * 1000 });
    var res = await s.c.request({ url: '/api/a' });
    assert.equal(res.data.token, 'stored');
    assert.equal(s.f.logins, 0);
  });

  test(p.name + ': 401 unauthenticated logs in again once and retries once; a second 401 goes back', async function () {
    var s = setupOn(p, function (req, g) {
      if (path(req) === '/api/locked') return unauth();
    });
    store(s.f, { token: 'revoked', expiresAt: Date.now() + 3600 * 1000 });
    var res = await s.c.request({ url: '/api/me', method: 'POST', data: { a: 1 } });
    assert.equal(res.statusCode, 200);
    assert.equal(res.data.token, 'tok1');
    assert.deepEqual(s.f.requests.map(path), ['/api/me', '/wechat/login', '/api/me']);
    var locked = await s.c.request({ url: '/api/locked' });
    assert.equal(locked.statusCode, 401);
    assert.equal(locked.data.error, 'unauthenticated');
    assert.equal(s.g.hits['/api/locked'], 2);
    assert.equal(s.f.logins, 2);
  });

  test(p.name + ': the phone number posts the platform form with Bearer and marks the phone bound', async function () {
    var posted = [];
    var s = setupOn(p, phoneAnswer(posted));
    await s.c.ensureLogin();
    var r = await s.c.bindPhone(PHONE_FORMS[p.kind].given);
    assert.deepEqual(r, PHONE);
    assert.equal(posted.length, 1);
    assert.deepEqual(posted[0].data, PHONE_FORMS[p.kind].posted);
    assert.equal(posted[0].header.Authorization, 'Bearer tok1');
    assert.equal(s.f.store[KEY].hasPhone, true);
    assert.equal(s.f.logins, 1);
  });

  test(p.name + ': a refused phone button sends nothing', async function () {
    var s = setupOn(p);
    var refusal =
      p.kind === 'alipay' ? { error: 11, errorMessage: '用户取消授权' } : { detail: { errMsg: 'getPhoneNumber:fail auth deny', errNo: 10200 } };
    await assert.rejects(s.c.bindPhone(refusal), function (err) {
      assert.ok(kit.isWechatAuthError(err));
      assert.equal(err.code, 'phone_denied');
      assert.equal(err.errno, p.kind === 'alipay' ? 11 : 10200);
      assert.match(err.errMsg, p.kind === 'alipay' ? /用户取消授权/ : /auth deny/);
      return true;
    });
    assert.equal(s.f.requests.length, 0);
  });

  test(p.name + ': a failed login rejects wx_login_failed with the platform message and sends nothing', async function () {
    var s = setupOn(p);
    s.f.loginFail = 'login:fail not logged in';
    await assert.rejects(s.c.request({ url: '/api/a' }), function (err) {
      assert.equal(err.code, 'wx_login_failed');
      assert.match(err.errMsg, /login:fail not logged in/);
      return true;
    });
    assert.equal(s.f.requests.length, 0);
  });

  test(p.name + ': a lost connection: GET retried once, then network_error', async function () {
    var s = setupOn(p, function (req) {
      if (path(req) === '/api/down') return { fail: 'request:fail net::ERR_CONNECTION_REFUSED' };
    });
    await assert.rejects(s.c.request({ url: '/api/down' }), function (err) {
      assert.equal(err.code, 'network_error');
      assert.match(err.errMsg, /ERR_CONNECTION_REFUSED/);
      return true;
    });
    assert.equal(s.g.hits['/api/down'], 2);
  });

  test(p.name + ': session() and logout() through the platform', async function () {
    var s = setupOn(p);
    await s.c.ensureLogin();
    var info = await s.c.session();
    assert.equal(info.openid, 'o_alice');
    await s.c.logout();
    assert.equal(s.f.store[KEY], undefined);
    assert.equal(s.c.getSession(), null);
    assert.equal(s.g.valid.tok1, undefined);
  });
});

// ---- login({ force: true }) ---------------------------------------------------

[{ name: 'wx', option: 'wx', fake: fakes.fakeWx }].concat(NATIVE).forEach(function (p) {
  test(p.name + ': login({ force: true }) logs in again with a live token; concurrent callers share it', async function () {
    var s = setupOn(p);
    s.g.valid.live = true;
    store(s.f, { token: 'live', expiresAt: Date.now() + 3600 * 1000, openid: 'o_alice', hasPhone: false });
    var all = await Promise.all([
      s.c.login({ force: true }),
      s.c.login({ force: true }),
      s.c.request({ url: '/api/pay' }), // waits for the new session
      s.c.ensureLogin()
    ]);
    assert.equal(s.f.logins, 1);
    assert.equal(all[0].token, 'tok1');
    assert.equal(all[1].token, 'tok1');
    assert.equal(all[2].data.token, 'tok1');
    assert.equal(all[3], 'tok1');
    assert.equal(s.f.store[KEY].token, 'tok1');
    // Once it is done, requests use the stored token again, without a login.
    var res = await s.c.request({ url: '/api/b' });
    assert.equal(res.data.token, 'tok1');
    assert.equal(s.f.logins, 1);
  });
});

test('login({ force: true }) that fails leaves the stored session and rejects its waiters', async function () {
  var s = setupOn(NATIVE[0]);
  s.g.valid.live = true;
  store(s.f, { token: 'live', expiresAt: Date.now() + 3600 * 1000 });
  s.f.loginFail = 'login:fail system error';
  var forced = s.c.login({ force: true });
  var waiting = s.c.request({ url: '/api/a' });
  await assert.rejects(forced, /system error/);
  await assert.rejects(waiting, /system error/);
  s.f.loginFail = null;
  assert.equal(s.c.getToken(), 'live');
  var res = await s.c.request({ url: '/api/a' });
  assert.equal(res.data.token, 'live');
});

// ---- what is specific to each platform -----------------------------------------

test('Alipay: my.getAuthCode with auth_base, my.request with headers, storage by {key}', async function () {
  var s = setupOn(NATIVE[4], null, { timeout: 5000 });
  await s.c.request({ url: '/api/a', method: 'POST', data: { x: 1 }, header: { 'Content-Type': 'application/json' } });
  assert.equal(s.f.loginOptions[0].scopes, 'auth_base');
  var login = s.f.raw[0];
  assert.equal(login.headers['content-type'], 'application/json');
  assert.equal(login.dataType, 'text', "the kit's own calls parse the body themselves");
  assert.equal(login.timeout, 5000);
  assert.equal(login.enableHttp2, undefined);
  var api = s.f.raw[1];
  assert.equal(api.headers.Authorization, 'Bearer tok1');
  assert.equal(api.headers['content-type'], 'application/json');
  assert.equal(api.dataType, undefined, "a request of the app keeps my.request's default");
  assert.deepEqual(api.data, { x: 1 });
  assert.equal(s.f.store[KEY].token, 'tok1');
});

test('Alipay: status and headers are answered as statusCode and header; a 4xx through fail is an answer', async function () {
  var s = setupOn(NATIVE[4], function (req) {
    if (path(req) === '/api/missing') return { statusCode: 404, data: { error: 'not_found' }, header: { 'X-Id': '7' } };
    if (path(req) === '/api/file') return { statusCode: 200, data: 'raw', header: {} };
  });
  var res = await s.c.request({ url: '/api/missing' });
  assert.deepEqual(res, { statusCode: 404, data: { error: 'not_found' }, header: { 'X-Id': '7' } });
  await s.c.request({ url: '/api/file', responseType: 'arraybuffer' });
  assert.equal(s.f.raw[s.f.raw.length - 1].dataType, 'arraybuffer');
});

test('Alipay: a non-2xx answer without its status (error 19) is network_error, not retried, no re-login', async function () {
  var g = fakes.gateway();
  var f = fakes.fakeMy({ handler: g.handle, bareHttpErrors: true });
  var c = createClient({ baseURL: BASE, storageKey: KEY, my: f });
  store(f, { token: 'revoked', expiresAt: Date.now() + 3600 * 1000 });
  await assert.rejects(c.request({ url: '/api/a' }), function (err) {
    assert.equal(err.code, 'network_error');
    assert.equal(err.errMsg, 'http status error (error 19)');
    return true;
  });
  assert.equal(g.hits['/api/a'], 1);
  assert.equal(f.logins, 0);
});

test('Alipay: the phone forms the page may hand over, and refusals answered in the clear', async function () {
  var posted = [];
  var s = setupOn(NATIVE[4], phoneAnswer(posted));
  var want = { response: 'Q0lQSEVS', sign: 'U0lH' };
  await s.c.bindPhone(ALIPAY_RESPONSE); // the JSON string alone
  await s.c.bindPhone(JSON.parse(ALIPAY_RESPONSE)); // the object in it
  await s.c.bindPhone({ type: 'getphonenumber', detail: { errMsg: 'getPhoneNumber:ok', encryptedData: 'Q0lQSEVS', sign: 'U0lH' } }); // uni-app
  await s.c.bindPhone({ detail: { errMsg: 'getPhoneNumber:ok', encryptedData: ALIPAY_RESPONSE } }); // older uni-app
  posted.forEach(function (req) {
    assert.deepEqual(req.data, want);
  });
  assert.equal(posted.length, 4);
  var clear = JSON.stringify({ response: { code: '40001', msg: 'Missing Required Arguments', subCode: 'isv.missing-encrypt-key', subMsg: '缺少加密配置' } });
  await assert.rejects(s.c.bindPhone({ response: clear }), function (err) {
    assert.equal(err.code, 'phone_denied');
    assert.equal(err.errno, 40001);
    assert.match(err.errMsg, /缺少加密配置 \(isv.missing-encrypt-key\)/);
    return true;
  });
  await assert.rejects(s.c.bindPhone({ detail: { type: 'getAuthorize', errorMessage: '用户拒绝授权' } }), /用户拒绝授权/);
  assert.equal(posted.length, 4);
});

test('Alipay: my.* objects that are not the platform are refused, naming what is missing', function () {
  assert.throws(function () {
    createClient({ baseURL: BASE, my: { request: function () {} } });
  }, /options.my has no getAuthCode\(\)/);
});

test('Douyin: a button that gives only a code posts the code (the gateway decides)', async function () {
  var posted = [];
  var s = setupOn(NATIVE[1], phoneAnswer(posted));
  await s.c.bindPhone({ detail: { errMsg: 'getPhoneNumber:ok', code: 'ttcode' } });
  assert.deepEqual(posted[0].data, { code: 'ttcode' });
});

test('Baidu: swan.getLoginCode where present, else swan.login; errCode failures', async function () {
  var s = setupOn(NATIVE[3]);
  await s.c.ensureLogin();
  assert.equal(s.f.usedGetLoginCode, true);
  var g = fakes.gateway();
  var old = fakes.fakeSwan({ handler: g.handle, noGetLoginCode: true });
  var c = createClient({ baseURL: BASE, storageKey: KEY, swan: old });
  assert.equal(await c.ensureLogin(), 'tok1');
  assert.equal(old.usedGetLoginCode, undefined);
  assert.equal(old.logins, 1);
});

test('one platform object at most, whichever they are', function () {
  assert.throws(function () {
    createClient({ baseURL: BASE, tt: fakes.fakeTt(), my: fakes.fakeMy() });
  }, /not several \(got tt, my\)/);
  assert.throws(function () {
    createClient({ baseURL: BASE, uni: fakes.fakeUni(), platform: 'lark' });
  }, /options.platform must be one of wechat, qq, douyin, kuaishou, baidu, alipay/);
});

// ---- uni-app and Taro builds for the other platforms --------------------------

test('uni-app on Douyin (found through the global tt): provider toutiao, the sealed phone form', async function () {
  var posted = [];
  var g = fakes.gateway(phoneAnswer(posted));
  var u = fakes.fakeUni({ handler: g.handle, provider: 'toutiao' });
  global.tt = {};
  var c;
  try {
    c = createClient({ baseURL: BASE, storageKey: KEY, uni: u });
  } finally {
    delete global.tt;
  }
  assert.equal(c.platform, 'douyin');
  await c.ensureLogin(); // the sealed form goes with the session it was sealed for
  await c.bindPhone(PHONE_FORMS.douyin.given);
  assert.equal(u.loginOptions[0].provider, 'toutiao');
  assert.deepEqual(posted[0].data, PHONE_FORMS.douyin.posted);
});

test('uni-app on Alipay: provider alipay with auth_base, text bodies, the uni-app phone event', async function () {
  var posted = [];
  var g = fakes.gateway(phoneAnswer(posted));
  var u = fakes.fakeUni({ handler: g.handle, provider: 'alipay' });
  var c = createClient({ baseURL: BASE, storageKey: KEY, uni: u, platform: 'alipay' });
  await c.bindPhone({ type: 'getphonenumber', detail: { errMsg: 'getPhoneNumber:ok', encryptedData: 'Q0lQSEVS', sign: 'U0lH' } });
  assert.equal(u.loginOptions[0].scopes, 'auth_base');
  assert.equal(u.requests[0].dataType, 'text');
  assert.deepEqual(posted[0].data, { response: 'Q0lQSEVS', sign: 'U0lH' });
  await assert.rejects(c.bindPhone({ detail: { errMsg: 'getPhoneNumber:fail Error: 用户拒绝授权' } }), function (err) {
    return err.code === 'phone_denied';
  });
});

test('Taro on Alipay: the login answer as authCode or code, status/headers answers both read', async function () {
  var g = fakes.gateway(function (req) {
    if (path(req) === '/api/a') return { statusCode: 200, data: { ok: true }, header: { A: '1' } };
  });
  var t = fakes.fakeTaro({
    handler: g.handle,
    loginAnswer: function (ok) {
      return { authCode: ok.code };
    }
  });
  global.my = { getAuthCode: function () {} };
  var c;
  try {
    c = createClient({ baseURL: BASE, storageKey: KEY, taro: t });
  } finally {
    delete global.my;
  }
  assert.equal(c.platform, 'alipay');
  var res = await c.request({ url: '/api/a' });
  assert.deepEqual(res.data, { ok: true });
  assert.deepEqual(t.loginOptions[0], { scopes: 'auth_base' });
  // Alipay's own answer shape, should a Taro version pass it through unmapped.
  t.request = function () {
    return Promise.resolve({ status: 201, headers: { B: '2' }, data: 'x' });
  };
  assert.deepEqual(await c.request({ url: '/api/a' }), { statusCode: 201, data: 'x', header: { B: '2' } });
});

test('Taro on QQ, Kuaishou and Baidu (found through their globals): the sealed phone form', async function () {
  var cases = [
    { global: 'qq', kind: 'qq' },
    { global: 'ks', kind: 'kuaishou' },
    { global: 'swan', kind: 'baidu' }
  ];
  for (var i = 0; i < cases.length; i++) {
    var posted = [];
    var g = fakes.gateway(phoneAnswer(posted));
    var t = fakes.fakeTaro({ handler: g.handle });
    global[cases[i].global] = {};
    var c;
    try {
      c = createClient({ baseURL: BASE, storageKey: KEY, taro: t });
    } finally {
      delete global[cases[i].global];
    }
    assert.equal(c.platform, cases[i].kind);
    await c.ensureLogin();
    // A detail with both forms: only WeChat's gateway takes the code.
    await c.bindPhone({ detail: { errMsg: 'getPhoneNumber:ok', code: 'c', encryptedData: 'ZW5j', iv: 'aXY=' } });
    assert.deepEqual(posted[posted.length - 1].data, { encryptedData: 'ZW5j', iv: 'aXY=' });
  }
});
