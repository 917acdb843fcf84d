'use strict';

// Test doubles for the node:test suites: stubbed `wx`, `uni` and `Taro`
// objects and a small fake gateway. Not part of the package.

var assert = require('node:assert/strict');

var BASE = 'https://gw.example.com';

// A fake platform object whose request is answered by `handler(req)` →
// {statusCode, data, header}, or {fail: 'errMsg'} for a network failure.
// Answers arrive asynchronously, as in the real runtime.
//
// kind 'wx':   callback style (wx.login({success, fail}), wx.request(...)).
// kind 'uni':  callback style too; uni.login must be given provider 'weixin'.
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
    if (kind === 'uni' && o.provider !== 'weixin') return { fail: 'login:fail provider is not weixin' };
    return { ok: { code: 'code' + ++codes, errMsg: 'login:ok' } };
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
    f.login = function (o) {
      setImmediate(function () {
        var r = loginOutcome(o);
        if (r.fail) o.fail({ errMsg: r.fail });
        else o.success(r.ok);
      });
    };
    f.request = function (o) {
      setImmediate(function () {
        var r = requestOutcome(o);
        if (r.fail) o.fail({ errMsg: r.fail });
        else o.success(r.ok);
      });
    };
  }
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
  path: path,
  bearer: bearer,
  unauth: unauth,
  gateway: gateway
};
