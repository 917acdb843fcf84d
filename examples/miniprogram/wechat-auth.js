/*
 * wechat-auth.js: mini-program client kit for caddy-wechat-auth.
 *
 * Dependency-free, CommonJS, ES5 plus Promise so that it runs in the
 * mini-program runtime with or without "ES6 to ES5" compilation, and in Node
 * for the tests (a fake `wx` is injected there).
 *
 *   var createClient = require('./wechat-auth').createClient;
 *   var client = createClient({ baseURL: 'https://api.example.com' });
 *   client.request({ url: '/api/orders' }).then(function (res) { ... });
 *
 * See README.md in this folder.
 */
'use strict';

var DEFAULT_STORAGE_KEY = 'wechat_auth_session';
var DEFAULT_PATH_PREFIX = '/wechat';
// Treat a token as expired this long before the gateway would, so that a
// request does not leave with a token that dies on the way.
var DEFAULT_EXPIRY_SKEW_MS = 60 * 1000;

function assign(target) {
  for (var i = 1; i < arguments.length; i++) {
    var src = arguments[i];
    if (!src) continue;
    for (var k in src) {
      if (Object.prototype.hasOwnProperty.call(src, k)) target[k] = src[k];
    }
  }
  return target;
}

function trimRight(s, ch) {
  while (s.length && s.charAt(s.length - 1) === ch) s = s.slice(0, -1);
  return s;
}

// The gateway answers JSON; wx.request parses it already, but a proxy in front
// may answer text, and a 204 has no body.
function parseBody(data) {
  if (typeof data !== 'string') return data;
  if (data === '') return null;
  try {
    return JSON.parse(data);
  } catch (e) {
    return data;
  }
}

function errorCodeOf(res) {
  var body = parseBody(res && res.data);
  return body && typeof body === 'object' && typeof body.error === 'string' ? body.error : '';
}

function makeError(code, message, extra) {
  var err = new Error(message || code);
  err.code = code;
  if (extra) assign(err, extra);
  return err;
}

// An Error from a non-2xx gateway answer: {"error", "message"} becomes
// err.code and err.message, plus err.statusCode and err.data.
function apiError(res) {
  var body = parseBody(res.data);
  var code = errorCodeOf(res) || 'http_' + res.statusCode;
  var message =
    body && typeof body === 'object' && typeof body.message === 'string' && body.message
      ? body.message
      : 'request failed with HTTP ' + res.statusCode;
  return makeError(code, message, { statusCode: res.statusCode, data: body, header: res.header });
}

function isOK(res) {
  return res.statusCode >= 200 && res.statusCode < 300;
}

function isUnauthenticated(res) {
  // Only the gateway's own verdict on the token triggers a re-login: a 401
  // from an upstream app (some other error code) is the app's business.
  return res.statusCode === 401 && errorCodeOf(res) === 'unauthenticated';
}

function createClient(options) {
  options = options || {};
  var wxApi = options.wx || (typeof wx !== 'undefined' ? wx : null); // eslint-disable-line no-undef
  if (!wxApi) throw new Error('wechat-auth: no `wx` object (pass options.wx outside the mini program)');
  if (!options.baseURL) throw new Error('wechat-auth: options.baseURL is required');

  var baseURL = trimRight(String(options.baseURL), '/');
  var prefix = options.pathPrefix == null ? DEFAULT_PATH_PREFIX : String(options.pathPrefix);
  prefix = trimRight(prefix, '/');
  if (prefix && prefix.charAt(0) !== '/') prefix = '/' + prefix;
  var storageKey = options.storageKey || DEFAULT_STORAGE_KEY;
  var skewMs = options.expirySkewMs == null ? DEFAULT_EXPIRY_SKEW_MS : options.expirySkewMs;
  var timeout = options.timeout; // ms, passed to wx.request / wx.login when set
  // HTTP/2 unless told not to: a gateway reload then refuses a request it
  // will not serve with GOAWAY, and the client sends it again by itself,
  // instead of losing the connection's first request (see the README).
  var http2 = options.http2 !== false;
  var now = options.now || function () { return Date.now(); };

  var loginInFlight = null;

  // ---- storage ----------------------------------------------------------

  function readSession() {
    var s;
    try {
      s = wxApi.getStorageSync(storageKey);
    } catch (e) {
      return null;
    }
    if (typeof s === 'string' && s) {
      try {
        s = JSON.parse(s);
      } catch (e) {
        return null;
      }
    }
    if (!s || typeof s !== 'object' || typeof s.token !== 'string' || !s.token) return null;
    return s;
  }

  function writeSession(s) {
    try {
      wxApi.setStorageSync(storageKey, s);
    } catch (e) {
      // Storage full or unavailable: the session still lives for this run
      // through the returned value; the next launch logs in again.
    }
  }

  function clearSession() {
    try {
      wxApi.removeStorageSync(storageKey);
    } catch (e) {
      /* nothing to do */
    }
  }

  function isFresh(s) {
    return !!s && (typeof s.expiresAt !== 'number' || now() < s.expiresAt - skewMs);
  }

  // The stored token when it is still valid, else ''.
  function currentToken() {
    var s = readSession();
    return isFresh(s) ? s.token : '';
  }

  // ---- wx wrappers ------------------------------------------------------

  function url(path) {
    if (/^https?:\/\//i.test(path)) return path;
    if (path.charAt(0) !== '/') path = '/' + path;
    return baseURL + path;
  }

  // wx.request as a Promise: resolves with {statusCode, data, header} for any
  // HTTP status, rejects only when no answer came (network, timeout, abort).
  function rawRequest(opts) {
    return new Promise(function (resolve, reject) {
      var req = {
        url: url(opts.url),
        method: (opts.method || 'GET').toUpperCase(),
        header: opts.header || {},
        success: function (res) {
          resolve({ statusCode: res.statusCode, data: res.data, header: res.header || {} });
        },
        fail: function (e) {
          var msg = (e && e.errMsg) || 'request:fail';
          reject(makeError('network_error', msg, { errMsg: msg }));
        }
      };
      if (opts.data !== undefined) req.data = opts.data;
      if (opts.dataType) req.dataType = opts.dataType;
      if (opts.responseType) req.responseType = opts.responseType;
      if (opts.timeout || timeout) req.timeout = opts.timeout || timeout;
      if (http2) req.enableHttp2 = true;
      wxApi.request(req);
    });
  }

  // A request that got no answer at all because the connection failed or
  // was reset (a gateway reload can reset a brand-new connection) is sent
  // once more when that is safe: idempotent methods, and the login, which
  // the gateway answers with the same session when a code comes twice. A
  // timeout is not retried: the server may still be working on it.
  var IDEMPOTENT = { GET: true, HEAD: true, OPTIONS: true, PUT: true, DELETE: true };

  function rawRequestRetrying(opts, safe) {
    return rawRequest(opts).catch(function (err) {
      var retry = safe === undefined ? IDEMPOTENT[(opts.method || 'GET').toUpperCase()] : safe;
      if (!retry || err.code !== 'network_error' || /timeout/i.test(err.errMsg || '')) throw err;
      return rawRequest(opts);
    });
  }

  function wxLogin() {
    return new Promise(function (resolve, reject) {
      var req = {
        success: function (res) {
          if (res && res.code) resolve(res.code);
          else reject(makeError('wx_login_failed', (res && res.errMsg) || 'wx.login gave no code'));
        },
        fail: function (e) {
          var msg = (e && e.errMsg) || 'login:fail';
          reject(makeError('wx_login_failed', msg, { errMsg: msg }));
        }
      };
      if (timeout) req.timeout = timeout;
      wxApi.login(req);
    });
  }

  function jsonHeader(token, extra) {
    var h = assign({ 'Content-Type': 'application/json' }, extra);
    if (token) h.Authorization = 'Bearer ' + token;
    return h;
  }

  // ---- login ------------------------------------------------------------

  // wx.login -> POST {prefix}/login. Every caller that asks while one is in
  // flight shares it: many first requests make one login.
  function login() {
    if (loginInFlight) return loginInFlight;
    var p = wxLogin()
      .then(function (code) {
        return rawRequestRetrying({ url: prefix + '/login', method: 'POST', header: jsonHeader(''), data: { code: code } }, true);
      })
      .then(function (res) {
        if (!isOK(res)) throw apiError(res);
        var body = parseBody(res.data);
        if (!body || typeof body.token !== 'string' || !body.token) {
          throw makeError('bad_response', 'login answer carries no token', { statusCode: res.statusCode, data: body });
        }
        var s = { token: body.token, openid: body.openid, hasPhone: !!body.has_phone };
        if (body.unionid) s.unionid = body.unionid;
        if (typeof body.expires_in === 'number' && body.expires_in > 0) s.expiresAt = now() + body.expires_in * 1000;
        writeSession(s);
        return body;
      });
    loginInFlight = p;
    function done() {
      if (loginInFlight === p) loginInFlight = null;
    }
    p.then(done, done);
    return p;
  }

  // A valid token: the stored one, or a fresh login's.
  function ensureToken() {
    var t = currentToken();
    if (t) return Promise.resolve(t);
    return login().then(function (body) {
      return body.token;
    });
  }

  // After a 401 unauthenticated for `usedToken`: drop it (unless another
  // caller already replaced it) and get a valid one, sharing any login that
  // is already under way.
  function renewToken(usedToken) {
    var s = readSession();
    if (s && s.token === usedToken) clearSession();
    return ensureToken();
  }

  // ---- authenticated requests ------------------------------------------

  function send(opts, token) {
    var header = assign({}, opts.header);
    // Ours wins over any Authorization header the caller set.
    for (var k in header) {
      if (k.toLowerCase() === 'authorization') delete header[k];
    }
    header.Authorization = 'Bearer ' + token;
    return rawRequestRetrying(assign({}, opts, { header: header }));
  }

  /**
   * request({url, method, data, header, timeout, dataType, responseType})
   * -> Promise<{statusCode, data, header}>
   *
   * Logs in first when there is no valid token. On 401 `unauthenticated`
   * it logs in again once and retries once; a second 401 is returned as is.
   * Any HTTP status resolves; the promise rejects only when there was no
   * answer (err.code 'network_error') or the login failed (err.code from the
   * gateway, or 'wx_login_failed').
   */
  function request(opts) {
    if (!opts || !opts.url) return Promise.reject(makeError('invalid_argument', 'request needs a url'));
    return ensureToken().then(function (token) {
      return send(opts, token).then(function (res) {
        if (!isUnauthenticated(res)) return res;
        return renewToken(token).then(function (fresh) {
          return send(opts, fresh);
        });
      });
    });
  }

  // A gateway endpoint whose non-2xx answers reject.
  function call(method, path, data) {
    return request({ url: prefix + path, method: method, data: data, header: { 'Content-Type': 'application/json' } }).then(
      function (res) {
        if (!isOK(res)) throw apiError(res);
        return parseBody(res.data);
      }
    );
  }

  // ---- phone numbers ----------------------------------------------------

  function markPhoneBound() {
    var s = readSession();
    if (s) {
      s.hasPhone = true;
      writeSession(s);
    }
  }

  // The legacy form {encryptedData, iv} is sealed with the session key of the
  // latest wx.login. Logging in now would rotate that key and the gateway
  // could no longer open it, so it goes out with the token we hold, with no
  // login and no retry. When it cannot work, log in so that the user's next
  // tap is sealed with the new key, and reject with err.tapAgain = true.
  function bindLegacy(encryptedData, iv) {
    function relogThenReject(err) {
      err.tapAgain = true;
      var s = readSession();
      if (s) clearSession();
      return login().then(
        function () {
          throw err;
        },
        function () {
          throw err;
        }
      );
    }
    var token = currentToken();
    if (!token) {
      return relogThenReject(
        makeError('unauthenticated', 'no valid session when the phone number was sealed; logged in again, tap the button again')
      );
    }
    return rawRequest({
      url: prefix + '/phone',
      method: 'POST',
      header: jsonHeader(token),
      data: { encryptedData: encryptedData, iv: iv }
    }).then(function (res) {
      if (isOK(res)) {
        markPhoneBound();
        return parseBody(res.data);
      }
      var err = apiError(res);
      if (err.code === 'decrypt_failed') {
        err.message = 'the phone number was sealed with an older session key; logged in again, tap the button again';
        return relogThenReject(err);
      }
      if (isUnauthenticated(res)) {
        err.message = 'the session expired; logged in again, tap the button again';
        return relogThenReject(err);
      }
      throw err;
    });
  }

  /**
   * bindPhone(event) with the event of
   * <button open-type="getPhoneNumber" bindgetphonenumber="...">
   * -> Promise<{phoneNumber, purePhoneNumber, countryCode}>
   *
   * event.detail.code (base library 2.21.2+) posts {code}; older ones give
   * {encryptedData, iv}, posted as the legacy form. A denial rejects with
   * err.code 'phone_denied' and sends nothing.
   */
  function bindPhone(event) {
    var detail = (event && event.detail) || {};
    var errMsg = typeof detail.errMsg === 'string' ? detail.errMsg : '';
    if (/deny|fail/i.test(errMsg)) {
      return Promise.reject(makeError('phone_denied', errMsg, { errMsg: errMsg }));
    }
    if (detail.code) {
      return call('POST', '/phone', { code: detail.code }).then(function (body) {
        markPhoneBound();
        return body;
      });
    }
    if (detail.encryptedData && detail.iv) return bindLegacy(detail.encryptedData, detail.iv);
    return Promise.reject(makeError('phone_denied', errMsg || 'getPhoneNumber gave neither a code nor encrypted data', { errMsg: errMsg }));
  }

  // ---- session and logout ----------------------------------------------

  /** session() -> Promise<{openid, unionid?, has_phone, expires_in}>; refreshes the stored expiry. */
  function session() {
    return call('GET', '/session').then(function (body) {
      var s = readSession();
      if (s && body) {
        if (typeof body.expires_in === 'number' && body.expires_in > 0) s.expiresAt = now() + body.expires_in * 1000;
        if (typeof body.has_phone === 'boolean') s.hasPhone = body.has_phone;
        writeSession(s);
      }
      return body;
    });
  }

  /**
   * logout() -> Promise<void>: kills the token at the gateway and always
   * clears local storage. A token the gateway already rejects counts as
   * logged out; other failures reject (storage is cleared all the same).
   */
  function logout() {
    var s = readSession();
    clearSession();
    if (!s) return Promise.resolve();
    return rawRequest({ url: prefix + '/logout', method: 'POST', header: jsonHeader(s.token) }).then(function (res) {
      if (isOK(res) || res.statusCode === 401) return;
      throw apiError(res);
    });
  }

  return {
    request: request,
    login: login,
    ensureLogin: ensureToken,
    bindPhone: bindPhone,
    session: session,
    logout: logout,
    getToken: currentToken,
    /** The stored session: {token, expiresAt, openid, unionid?, hasPhone}, or null. */
    getSession: readSession
  };
}

module.exports = { createClient: createClient };
