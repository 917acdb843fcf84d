'use strict';

// Test doubles for the node:test suites: stubbed `wx`, `uni`, `Taro`, `qq`,
// `tt`, `ks`, `swan` and `my` objects and a small fake gateway. Not part of
// the package.

var assert = require('node:assert/strict');

var BASE = 'https://gw.example.com';

// A fake platform object whose request is answered by `handler(req)` →
// {statusCode, data, header}, or {fail: 'errMsg'} for a network failure.
// Answers arrive asynchronously, as in the real runtime.
//
// kind 'wx':   callback style (wx.login({success, fail}), wx.request(...)).
// kind 'uni':  callback style too; uni.login must be given the provider
//              opts.provider says ('weixin' unless told).
// kind 'qq', 'ks': wx's shapes.
// kind 'tt':   wx's shapes; tt.login also answers anonymousCode and isLogin.
// kind 'swan': wx's shapes, and swan.getLoginCode (unless opts.noGetLoginCode);
//              failures also carry errCode, as Baidu's do.
// kind 'taro': promise style; Taro.login() and Taro.request() return
//              promises and the fake throws if it is handed callbacks.
//
// All keep storage in `store` (a copy, as the real storage does) and record
// `requests`, `loginOptions` and the number of `logins`.
function fakePlatform(kind, opts) {
  opts = opts || {};
  var store = {};
  var codes = 0;
  var f = {
    kind: kind,
    store: store,
    requests: [],
    loginOptions: [],
    logins: 0,
    loginFail: opts.loginFail || null,
    handler: opts.handler,
    getStorageSync: function (k) {
      return Object.prototype.hasOwnProperty.call(store, k) ? store[k] : '';
    },
    setStorageSync: function (k, v) {
      store[k] = JSON.parse(JSON.stringify(v));
    },
    removeStorageSync: function (k) {
      delete store[k];
    }
  };
  function loginOutcome(o) {
    f.logins++;
    f.loginOptions.push(o);
    if (f.loginFail) return { fail: f.loginFail };
    var provider = opts.provider || 'weixin';
    if (kind === 'uni' && o.provider !== provider) return { fail: 'login:fail provider is not ' + provider };
    var ok = { code: 'code' + ++codes, errMsg: 'login:ok' };
    if (kind === 'tt') {
      ok.anonymousCode = 'anon' + codes;
      ok.isLogin = true;
    }
    if (opts.loginAnswer) ok = opts.loginAnswer(ok, o);
    return { ok: ok };
  }
  function requestOutcome(o) {
    f.requests.push(o);
    var r = f.handler(o);
    if (r.fail) return { fail: r.fail };
    return { ok: { statusCode: r.statusCode, data: r.data, header: r.header || {}, errMsg: 'request:ok' } };
  }
  if (kind === 'taro') {
    var later = function (outcome) {
      return new Promise(function (resolve, reject) {
        setImmediate(function () {
          var r = outcome();
          if (r.fail) reject({ errMsg: r.fail });
          else resolve(r.ok);
        });
      });
    };
    var noCallbacks = function (o, what) {
      if (o && (o.success || o.fail || o.complete)) throw new Error('Taro.' + what + ' was handed callbacks');
    };
    f.login = function (o) {
      noCallbacks(o, 'login');
      return later(function () {
        return loginOutcome(o || {});
      });
    };
    f.request = function (o) {
      noCallbacks(o, 'request');
      var task = later(function () {
        return requestOutcome(o);
      });
      task.abort = function () {};
      return task;
    };
  } else {
    var failure = function (errMsg) {
      return kind === 'swan' ? { errCode: 10001, errMsg: errMsg } : { errMsg: errMsg };
    };
    f.login = function (o) {
      setImmediate(function () {
        var r = loginOutcome(o);
        if (r.fail) o.fail(failure(r.fail));
        else o.success(r.ok);
      });
    };
    if (kind === 'swan' && !opts.noGetLoginCode) {
      f.getLoginCode = function (o) {
        f.usedGetLoginCode = true;
        f.login(o);
      };
    }
    f.request = function (o) {
      setImmediate(function () {
        var r = requestOutcome(o);
        if (r.fail) o.fail(failure(r.fail));
        else o.success(r.ok);
      });
    };
  }
  return f;
}

// Alipay's `my`, as its docs and @mini-types/alipay describe it:
//   my.getAuthCode({scopes, success({authCode}), fail({error, errorMessage})})
//   my.request({url, method, headers, data, dataType, timeout}): success
//     {status, headers, data} for a 2xx answer; a non-2xx one calls fail
//     with {error: 19, errorMessage: 'http status error'} plus status,
//     headers and data (unless opts.bareHttpErrors); no answer: fail
//     {error: 12, errorMessage}. dataType 'json' (the default) parses the
//     body and fails with error 14 when it is not JSON; 'text' gives it as is.
//   my.getStorageSync({key}) -> {data}; my.setStorageSync({key, data});
//   my.removeStorageSync({key}).
// It throws when handed wx's shapes (header, a bare storage key). `requests`
// records each request as the gateway sees it ({url, method, header, data});
// `raw` what my.request was given.
function fakeMy(opts) {
  opts = opts || {};
  var store = {};
  var codes = 0;
  var f = {
    kind: 'my',
    store: store,
    requests: [],
    raw: [],
    loginOptions: [],
    logins: 0,
    loginFail: opts.loginFail || null,
    handler: opts.handler
  };
  function keyOf(o, what) {
    if (!o || typeof o !== 'object' || typeof o.key !== 'string') throw new Error('my.' + what + ' takes {key}, not ' + JSON.stringify(o));
    return o.key;
  }
  f.getStorageSync = function (o) {
    var k = keyOf(o, 'getStorageSync');
    return { data: Object.prototype.hasOwnProperty.call(store, k) ? store[k] : null };
  };
  f.setStorageSync = function (o) {
    store[keyOf(o, 'setStorageSync')] = JSON.parse(JSON.stringify(o.data));
    return { success: true };
  };
  f.removeStorageSync = function (o) {
    delete store[keyOf(o, 'removeStorageSync')];
    return { success: true };
  };
  f.getAuthCode = function (o) {
    setImmediate(function () {
      f.logins++;
      f.loginOptions.push(o);
      if (f.loginFail) o.fail({ error: 11, errorMessage: f.loginFail });
      else o.success({ authCode: 'code' + ++codes, authSuccessScopes: ['auth_base'], authErrorScopes: {} });
    });
  };
  f.request = function (o) {
    if ('header' in o) throw new Error('my.request takes headers, not header');
    setImmediate(function () {
      f.raw.push(o);
      var req = { url: o.url, method: o.method || 'GET', header: o.headers || {}, data: o.data };
      f.requests.push(req);
      var r = f.handler(req);
      if (r.fail) return o.fail({ error: 12, errorMessage: r.fail });
      var body = typeof r.data === 'string' ? r.data : JSON.stringify(r.data);
      var data = body;
      if ((o.dataType || 'json') === 'json') {
        try {
          data = JSON.parse(body);
        } catch (e) {
          return o.fail({ error: 14, errorMessage: 'JSON parse data error' });
        }
      }
      var res = { status: r.statusCode, headers: r.header || {}, data: data };
      if (r.statusCode >= 200 && r.statusCode < 300) return o.success(res);
      var err = { error: 19, errorMessage: 'http status error' };
      o.fail(opts.bareHttpErrors ? err : Object.assign(err, res));
    });
    return { abort: function () {} };
  };
  return f;
}

function fakeWx(opts) {
  return fakePlatform('wx', opts);
}

function fakeUni(opts) {
  return fakePlatform('uni', opts);
}

function fakeTaro(opts) {
  return fakePlatform('taro', opts);
}

function fakeQq(opts) {
  return fakePlatform('qq', opts);
}

function fakeTt(opts) {
  return fakePlatform('tt', opts);
}

function fakeKs(opts) {
  return fakePlatform('ks', opts);
}

function fakeSwan(opts) {
  return fakePlatform('swan', opts);
}

function path(req) {
  return req.url.slice(BASE.length);
}

function bearer(req) {
  var h = req.header || {};
  return h.Authorization || '';
}

function unauth() {
  return {
    statusCode: 401,
    data: { error: 'unauthenticated', message: 'missing, invalid or expired token' },
    header: { 'WWW-Authenticate': 'Bearer' }
  };
}

// A small gateway: login hands out tok1, tok2, ...; `valid` holds live tokens.
// `extra(req, g)` answers first when it returns something.
function gateway(extra) {
  var g = { n: 0, valid: {}, hits: {} };
  g.handle = function (req) {
    var p = path(req);
    g.hits[p] = (g.hits[p] || 0) + 1;
    if (extra) {
      var r = extra(req, g);
      if (r) return r;
    }
    if (p === '/wechat/login') {
      assert.equal(req.method, 'POST');
      assert.match(req.data.code, /^code\d+$/);
      var t = 'tok' + ++g.n;
      g.valid[t] = true;
      return { statusCode: 200, data: { token: t, expires_in: 3600, openid: 'o_alice', has_phone: false } };
    }
    var tok = bearer(req).replace(/^Bearer /, '');
    if (!g.valid[tok]) return unauth();
    if (p === '/wechat/logout') {
      delete g.valid[tok];
      return { statusCode: 204, data: '' };
    }
    if (p === '/wechat/session') {
      return { statusCode: 200, data: { openid: 'o_alice', has_phone: false, expires_in: 7200 } };
    }
    return { statusCode: 200, data: { path: p, token: tok } };
  };
  return g;
}

module.exports = {
  BASE: BASE,
  fakeWx: fakeWx,
  fakeUni: fakeUni,
  fakeTaro: fakeTaro,
  fakeQq: fakeQq,
  fakeTt: fakeTt,
  fakeKs: fakeKs,
  fakeSwan: fakeSwan,
  fakeMy: fakeMy,
  path: path,
  bearer: bearer,
  unauth: unauth,
  gateway: gateway
};
