/*
 * caddy-wechat-auth-miniprogram: the mini-program client kit of
 * caddy-wechat-auth (a Caddy plugin that is the login server of WeChat Mini
 * Programs).
 *
 * One file, no dependencies, CommonJS, ES5 plus Promise, so that it runs in
 * the mini-program runtime with or without "ES6 to ES5" compilation, in
 * uni-app and Taro builds, and in Node for the tests (fakes are injected).
 *
 *   var createClient = require('caddy-wechat-auth-miniprogram').createClient;
 *   var client = createClient({ baseURL: 'https://api.example.com' });        // native: global wx
 *   var client = createClient({ baseURL: 'https://api.example.com', uni: uni });   // uni-app
 *   var client = createClient({ baseURL: 'https://api.example.com', taro: Taro }); // Taro
 *   client.request({ url: '/api/orders' }).then(function (res) { ... });
 *
 * Types: index.d.ts next to this file. See README.md. Licence: Apache-2.0.
 */
'use strict';

var DEFAULT_STORAGE_KEY = 'wechat_auth_session';
var DEFAULT_PATH_PREFIX = '/wechat';
// Treat a token as expired this long before the gateway would, so that a
// request does not leave with a token that dies on the way.
var DEFAULT_EXPIRY_SKEW_MS = 60 * 1000;
// e.detail.errno of the phone-number buttons when the mini program's quota
// for them is used up (WeChat's documented "no quota" error).
var PHONE_NO_QUOTA_ERRNO = 1400001;

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

// The gateway answers JSON; the platform's request parses it already, but a proxy in front
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

// Every rejection of the kit is an Error named 'WechatAuthError' with a
// string `code` (see index.d.ts for the list).
function makeError(code, message, extra) {
  var err = new Error(message || code);
  err.name = 'WechatAuthError';
  err.code = code;
  if (extra) assign(err, extra);
  return err;
}

function isWechatAuthError(value) {
  return !!value && typeof value === 'object' && value.name === 'WechatAuthError' && typeof value.code === 'string';
}

// The errMsg of a platform failure: wx and uni call `fail` with {errMsg};
// Taro rejects with that object, or with an Error when something threw.
function errMsgOf(e, fallback) {
  if (e && typeof e.errMsg === 'string' && e.errMsg) return e.errMsg;
  if (e && typeof e.message === 'string' && e.message) return e.message;
  return fallback;
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

// ---- platforms ------------------------------------------------------------
//
// An adapter gives the core one shape, whatever the platform:
//   login(timeout) -> Promise<{code, errMsg}>; rejects with the failure
//   request(req)   -> Promise<{statusCode, data, header}> for any HTTP status;
//                     rejects only when no answer came
//       req: {url, method, header, data?, dataType?, responseType?, timeout?, enableHttp2?}
//   getItem(key), setItem(key, value), removeItem(key): synchronous, may throw

var PLATFORM_METHODS = ['login', 'request', 'getStorageSync', 'setStorageSync', 'removeStorageSync'];

function checkPlatform(api, label) {
  for (var i = 0; i < PLATFORM_METHODS.length; i++) {
    if (typeof api[PLATFORM_METHODS[i]] !== 'function') {
      throw new Error('wechat-auth: ' + label + ' has no ' + PLATFORM_METHODS[i] + '() (is it the platform object?)');
    }
  }
}

function storageOf(api) {
  return {
    getItem: function (k) {
      return api.getStorageSync(k);
    },
    setItem: function (k, v) {
      api.setStorageSync(k, v);
    },
    removeItem: function (k) {
      api.removeStorageSync(k);
    }
  };
}

// wx and uni: callback style ({success, fail}). uni.login also takes the
// provider, 'weixin' in a WeChat mini program.
function callbackPlatform(api, name, loginExtra) {
  return assign(storageOf(api), {
    name: name,
    login: function (timeout) {
      return new Promise(function (resolve, reject) {
        var o = assign({}, loginExtra, { success: resolve, fail: reject });
        if (timeout) o.timeout = timeout;
        api.login(o);
      });
    },
    request: function (req) {
      return new Promise(function (resolve, reject) {
        api.request(assign({}, req, { success: resolve, fail: reject }));
      });
    }
  });
}

// Taro: Taro.login() and Taro.request() return promises (Taro.request's
// goes through the app's Taro.addInterceptor chain).
function promisePlatform(api, name) {
  return assign(storageOf(api), {
    name: name,
    login: function (timeout) {
      return new Promise(function (resolve, reject) {
        Promise.resolve(api.login(timeout ? { timeout: timeout } : {})).then(resolve, reject);
      });
    },
    request: function (req) {
      return new Promise(function (resolve, reject) {
        Promise.resolve(api.request(assign({}, req))).then(resolve, reject);
      });
    }
  });
}

// options.wx, options.uni or options.taro; none: the global wx.
function platformOf(options) {
  var given = (options.wx ? 1 : 0) + (options.uni ? 1 : 0) + (options.taro ? 1 : 0);
  if (given > 1) throw new Error('wechat-auth: pass one of options.wx, options.uni and options.taro, not several');
  if (options.uni) {
    checkPlatform(options.uni, 'options.uni');
    return callbackPlatform(options.uni, 'uni', { provider: 'weixin' });
  }
  if (options.taro) {
    checkPlatform(options.taro, 'options.taro');
    return promisePlatform(options.taro, 'Taro');
  }
  var wxApi = options.wx || (typeof wx !== 'undefined' ? wx : null); // eslint-disable-line no-undef
  if (!wxApi) {
    throw new Error('wechat-auth: no `wx` object (outside the mini program pass options.wx; in uni-app options.uni, in Taro options.taro)');
  }
  checkPlatform(wxApi, options.wx ? 'options.wx' : 'wx');
  return callbackPlatform(wxApi, 'wx', null);
}

// ---- phone-number buttons --------------------------------------------------

// bindPhone takes the button's event or its detail.
function phoneDetailOf(arg) {
  if (!arg || typeof arg !== 'object') return {};
  return arg.detail && typeof arg.detail === 'object' ? arg.detail : arg;
}

// WeChat's client-side failure of a phone-number button as an Error, or null.
// WeChat documents e.detail.errno 1400001 for "no quota" (an errMsg saying
// "no quota" counts too, for base libraries that give no errno). A refusal
// is an errMsg like "getPhoneNumber:fail user deny", with no errno. Other
// failures (errno 104 or 112: privacy agreement; "fail no permission": an
// unverified mini program) are reported like a refusal, errno kept.
function phoneFailure(detail, errMsg) {
  var errno = NaN;
  if (typeof detail.errno === 'number') errno = detail.errno;
  else if (typeof detail.errno === 'string' && detail.errno !== '') errno = Number(detail.errno);
  var extra = { errMsg: errMsg };
  if (!isNaN(errno)) extra.errno = errno;
  if (errno === PHONE_NO_QUOTA_ERRNO || /no quota/i.test(errMsg)) {
    return makeError(
      'phone_quota_exceeded',
      "WeChat has no quota left for this mini program's phone-number buttons" + (errMsg ? ' (' + errMsg + ')' : ''),
      extra
    );
  }
  if (/deny|fail/i.test(errMsg) || (!isNaN(errno) && errno !== 0)) {
    return makeError('phone_denied', errMsg || 'the phone number button failed with errno ' + errno, extra);
  }
  return null;
}

function createClient(options) {
  options = options || {};
  var platform = platformOf(options);
  if (!options.baseURL) throw new Error('wechat-auth: options.baseURL is required');

  var baseURL = trimRight(String(options.baseURL), '/');
  var prefix = options.pathPrefix == null ? DEFAULT_PATH_PREFIX : String(options.pathPrefix);
  prefix = trimRight(prefix, '/');
  if (prefix && prefix.charAt(0) !== '/') prefix = '/' + prefix;
  var storageKey = options.storageKey || DEFAULT_STORAGE_KEY;
  var skewMs = options.expirySkewMs == null ? DEFAULT_EXPIRY_SKEW_MS : options.expirySkewMs;
  var timeout = options.timeout; // ms, passed to the platform's request and login when set
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
      s = platform.getItem(storageKey);
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
      platform.setItem(storageKey, s);
    } catch (e) {
      // Storage full or unavailable: the session still lives for this run
      // through the returned value; the next launch logs in again.
    }
  }

  function clearSession() {
    try {
      platform.removeItem(storageKey);
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

  // ---- platform calls ---------------------------------------------------

  function url(path) {
    if (/^https?:\/\//i.test(path)) return path;
    if (path.charAt(0) !== '/') path = '/' + path;
    return baseURL + path;
  }

  // The platform's request: resolves with {statusCode, data, header} for any
  // HTTP status, rejects only when no answer came (network, timeout, abort).
  function rawRequest(opts) {
    var req = {
      url: url(opts.url),
      method: (opts.method || 'GET').toUpperCase(),
      header: opts.header || {}
    };
    if (opts.data !== undefined) req.data = opts.data;
    if (opts.dataType) req.dataType = opts.dataType;
    if (opts.responseType) req.responseType = opts.responseType;
    if (opts.timeout || timeout) req.timeout = opts.timeout || timeout;
    if (http2) req.enableHttp2 = true;
    return platform.request(req).then(
      function (res) {
        res = res || {};
        return { statusCode: res.statusCode, data: res.data, header: res.header || {} };
      },
      function (e) {
        var msg = errMsgOf(e, 'request:fail');
        throw makeError('network_error', msg, { errMsg: msg });
      }
    );
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

  // The platform's login: the one-time code, or wx_login_failed.
  function wxLogin() {
    return platform.login(timeout).then(
      function (res) {
        if (res && res.code) return res.code;
        throw makeError('wx_login_failed', (res && res.errMsg) || platform.name + '.login gave no code');
      },
      function (e) {
        var msg = errMsgOf(e, 'login:fail');
        throw makeError('wx_login_failed', msg, { errMsg: msg });
      }
    );
  }

  function jsonHeader(token, extra) {
    var h = assign({ 'Content-Type': 'application/json' }, extra);
    if (token) h.Authorization = 'Bearer ' + token;
    return h;
  }

  // ---- login ------------------------------------------------------------

  // wx.login (uni.login, Taro.login) -> POST {prefix}/login. Every caller
  // that asks while one is in flight shares it: many first requests make one
  // login.
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
   * bindPhone(eventOrDetail) with the event (or its `detail`) of
   *   <button open-type="getPhoneNumber" bindgetphonenumber="...">  or
   *   <button open-type="getRealtimePhoneNumber" bindgetrealtimephonenumber="...">
   * (uni-app: @getphonenumber / @getrealtimephonenumber; Taro:
   * onGetPhoneNumber / onGetRealTimePhoneNumber)
   * -> Promise<{phoneNumber, purePhoneNumber, countryCode}>
   *
   * detail.code (getPhoneNumber since base library 2.21.2, and always for
   * getRealtimePhoneNumber) posts {code}; older base libraries give
   * {encryptedData, iv}, posted as the legacy form. WeChat's own refusals
   * send nothing: errno 1400001 (no quota left) rejects with
   * 'phone_quota_exceeded', any other failure (the user said no, or WeChat
   * did not ask) with 'phone_denied'; both keep errMsg and errno.
   */
  function bindPhone(eventOrDetail) {
    var detail = phoneDetailOf(eventOrDetail);
    var errMsg = typeof detail.errMsg === 'string' ? detail.errMsg : '';
    var failure = phoneFailure(detail, errMsg);
    if (failure) return Promise.reject(failure);
    if (detail.code) {
      return call('POST', '/phone', { code: detail.code }).then(function (body) {
        markPhoneBound();
        return body;
      });
    }
    if (detail.encryptedData && detail.iv) return bindLegacy(detail.encryptedData, detail.iv);
    return Promise.reject(makeError('phone_denied', errMsg || 'the phone number button gave neither a code nor encrypted data', { errMsg: errMsg }));
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

module.exports = { createClient: createClient, isWechatAuthError: isWechatAuthError };
