/*
 * caddy-wechat-auth-miniprogram: the mini-program client kit of
 * caddy-wechat-auth (a Caddy plugin that is the login server of WeChat Mini
 * Programs).
 *
 * One file, no dependencies, CommonJS, ES5 plus Promise, so that it runs in
 * the mini-program runtime with or without "ES6 to ES5" compilation, in
 * uni-app and Taro builds for every platform they target (WeChat, QQ,
 * Douyin, Kuaishou, Baidu, Alipay), and in Node for the tests (fakes are
 * injected).
 *
 *   var createClient = require('caddy-wechat-auth-miniprogram').createClient;
 *   var client = createClient({ baseURL: 'https://api.example.com' });        // native: global wx
 *   var client = createClient({ baseURL: 'https://api.example.com', uni: uni });   // uni-app
 *   var client = createClient({ baseURL: 'https://api.example.com', taro: Taro }); // Taro
 *   var client = createClient({ baseURL: 'https://api.example.com', tt: tt });     // Douyin (qq, ks, swan, my alike)
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

// The message of a platform failure: wx, qq, tt, ks, swan and uni call
// `fail` with {errMsg}; Alipay's my.* with {error, errorMessage}; Taro
// rejects with one of those, or with an Error when something threw.
function errMsgOf(e, fallback) {
  if (e && typeof e.errMsg === 'string' && e.errMsg) return e.errMsg;
  if (e && typeof e.errorMessage === 'string' && e.errorMessage) {
    return e.errorMessage + (typeof e.error === 'number' ? ' (error ' + e.error + ')' : '');
  }
  if (e && typeof e.message === 'string' && e.message) return e.message;
  return fallback;
}

// The HTTP status of an answer: statusCode everywhere but in Alipay's
// my.request, which says status (newer base libraries give both).
function statusOf(res) {
  if (!res || typeof res !== 'object') return undefined;
  if (typeof res.statusCode === 'number') return res.statusCode;
  return typeof res.status === 'number' ? res.status : undefined;
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
//   kind           'wechat' | 'qq' | 'douyin' | 'kuaishou' | 'baidu' | 'alipay'
//   label          what error messages call it ('wx', 'tt', 'uni', 'Taro', ...)
//   login(timeout) -> Promise<{code} or {authCode}>; rejects with the failure
//   request(req)   -> Promise<the platform's answer>; rejects with the failure
//       req: {url, method, header, data?, dataType?, responseType?, timeout?, enableHttp2?}
//   getItem(key), setItem(key, value), removeItem(key): synchronous, may throw
//   textBodies     true where the kit's own calls ask for text and parse it

var STORAGE_METHODS = ['getStorageSync', 'setStorageSync', 'removeStorageSync'];

// The native platform objects, each with its option name and how it logs in.
// QQ, Douyin and Kuaishou copied wx's API (callbacks, `code`, storage by
// key); Baidu's newer swan.getLoginCode replaces swan.login where present;
// Alipay differs throughout (see alipayPlatform).
var NATIVE = [
  { option: 'wx', kind: 'wechat' },
  { option: 'qq', kind: 'qq' },
  { option: 'tt', kind: 'douyin' },
  { option: 'ks', kind: 'kuaishou' },
  { option: 'swan', kind: 'baidu' },
  { option: 'my', kind: 'alipay' }
];
var FRAMEWORKS = ['uni', 'taro'];

// uni.login's provider for each platform of a uni-app build (uni-app's
// provider names; Kuaishou has none, so none is sent there).
var UNI_PROVIDER = { wechat: 'weixin', qq: 'qq', douyin: 'toutiao', baidu: 'baidu', alipay: 'alipay' };

function checkMethods(api, label, methods) {
  for (var i = 0; i < methods.length; i++) {
    if (typeof api[methods[i]] !== 'function') {
      throw new Error('wechat-auth: ' + label + ' has no ' + methods[i] + '() (is it the platform object?)');
    }
  }
}

function keyStorage(api) {
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

function callback(fn, o) {
  return new Promise(function (resolve, reject) {
    fn(assign({}, o, { success: resolve, fail: reject }));
  });
}

// What a uni-app or Taro build runs on: the platform's global object tells
// (each runtime defines its own; QQ and Kuaishou also answer to wx, so they
// are asked first). Node and unknown runtimes count as WeChat.
function detectKind() {
  /* eslint-disable no-undef */
  if (typeof my !== 'undefined' && my && typeof my.getAuthCode === 'function') return 'alipay';
  if (typeof tt !== 'undefined' && tt) return 'douyin';
  if (typeof swan !== 'undefined' && swan) return 'baidu';
  if (typeof ks !== 'undefined' && ks) return 'kuaishou';
  if (typeof qq !== 'undefined' && qq) return 'qq';
  /* eslint-enable no-undef */
  return 'wechat';
}

var KINDS = { wechat: true, qq: true, douyin: true, kuaishou: true, baidu: true, alipay: true };

// wx, qq, tt, ks and swan: callback style ({success, fail}), storage by key.
// tt.login also gives an anonymousCode, which is not sent: the gateway keys
// sessions on the user's openid, which only `code` yields.
function nativePlatform(api, entry, label) {
  var loginFn = 'login';
  if (entry.kind === 'baidu' && typeof api.getLoginCode === 'function') loginFn = 'getLoginCode';
  checkMethods(api, label, [loginFn, 'request'].concat(STORAGE_METHODS));
  return assign(keyStorage(api), {
    kind: entry.kind,
    label: entry.option,
    login: function (timeout) {
      return callback(function (o) {
        api[loginFn](o);
      }, timeout ? { timeout: timeout } : null);
    },
    request: function (req) {
      return callback(function (o) {
        api.request(o);
      }, req);
    }
  });
}

// Alipay: my.getAuthCode({scopes: 'auth_base'}) gives `authCode` (silent,
// no consent sheet); my.request takes `headers` and `dataType`, answers
// `status` and `headers`, and calls `fail` (error 19) for a non-2xx answer;
// storage takes {key} and {key, data}, and getStorageSync answers {data}.
function alipayPlatform(api, label) {
  checkMethods(api, label, ['getAuthCode', 'request'].concat(STORAGE_METHODS));
  return {
    kind: 'alipay',
    label: label,
    textBodies: true,
    login: function () {
      return callback(function (o) {
        api.getAuthCode(o);
      }, { scopes: 'auth_base' });
    },
    request: function (req) {
      var headers = {};
      for (var k in req.header) {
        // my.request looks for headers['content-type'] to choose how to encode data.
        if (Object.prototype.hasOwnProperty.call(req.header, k)) headers[k.toLowerCase() === 'content-type' ? 'content-type' : k] = req.header[k];
      }
      var o = { url: req.url, method: req.method, headers: headers };
      if (req.data !== undefined) o.data = req.data;
      if (req.timeout) o.timeout = req.timeout;
      if (req.dataType) o.dataType = req.dataType;
      if (req.responseType === 'arraybuffer') o.dataType = 'arraybuffer';
      return callback(function (opts) {
        api.request(opts);
      }, o);
    },
    getItem: function (k) {
      var r = api.getStorageSync({ key: k });
      return r && typeof r === 'object' ? r.data : undefined;
    },
    setItem: function (k, v) {
      api.setStorageSync({ key: k, data: v });
    },
    removeItem: function (k) {
      api.removeStorageSync({ key: k });
    }
  };
}

// uni-app: callback style like wx on every platform (uni-app maps each
// platform's API onto wx's names); uni.login is told the platform's
// provider, and on Alipay the silent scope.
function uniPlatform(api, kind) {
  checkMethods(api, 'options.uni', ['login', 'request'].concat(STORAGE_METHODS));
  return assign(keyStorage(api), {
    kind: kind,
    label: 'uni',
    textBodies: kind === 'alipay',
    login: function (timeout) {
      var o = {};
      if (UNI_PROVIDER[kind]) o.provider = UNI_PROVIDER[kind];
      if (kind === 'alipay') o.scopes = 'auth_base';
      if (timeout) o.timeout = timeout;
      return callback(function (opts) {
        api.login(opts);
      }, o);
    },
    request: function (req) {
      return callback(function (o) {
        api.request(o);
      }, req);
    }
  });
}

// Taro: Taro.login() and Taro.request() return promises (Taro.request's
// goes through the app's Taro.addInterceptor chain).
function taroPlatform(api, kind) {
  checkMethods(api, 'options.taro', ['login', 'request'].concat(STORAGE_METHODS));
  return assign(keyStorage(api), {
    kind: kind,
    label: 'Taro',
    textBodies: kind === 'alipay',
    login: function (timeout) {
      var o = {};
      if (kind === 'alipay') o.scopes = 'auth_base';
      if (timeout) o.timeout = timeout;
      return new Promise(function (resolve, reject) {
        Promise.resolve(api.login(o)).then(resolve, reject);
      });
    },
    request: function (req) {
      return new Promise(function (resolve, reject) {
        Promise.resolve(api.request(assign({}, req))).then(resolve, reject);
      });
    }
  });
}

// At most one platform object in options; none: the global wx.
function platformOf(options) {
  var names = [];
  var all = NATIVE.map(function (e) {
    return e.option;
  }).concat(FRAMEWORKS);
  for (var i = 0; i < all.length; i++) if (options[all[i]]) names.push(all[i]);
  if (names.length > 1) {
    throw new Error(
      'wechat-auth: pass one of options.wx, options.uni and options.taro (or options.qq, options.tt, options.ks, options.swan, options.my), not several (got ' +
        names.join(', ') +
        ')'
    );
  }
  if (options.platform != null && !KINDS[options.platform]) {
    throw new Error('wechat-auth: options.platform must be one of ' + Object.keys(KINDS).join(', '));
  }
  if (options.uni) return uniPlatform(options.uni, options.platform || detectKind());
  if (options.taro) return taroPlatform(options.taro, options.platform || detectKind());
  for (var j = 0; j < NATIVE.length; j++) {
    var e = NATIVE[j];
    if (!options[e.option]) continue;
    var label = 'options.' + e.option;
    return e.kind === 'alipay' ? alipayPlatform(options.my, label) : nativePlatform(options[e.option], e, label);
  }
  var wxApi = typeof wx !== 'undefined' ? wx : null; // eslint-disable-line no-undef
  if (!wxApi) {
    throw new Error(
      'wechat-auth: no `wx` object (outside the mini program pass options.wx; in uni-app options.uni, in Taro options.taro; on QQ, Douyin, Kuaishou, Baidu, Alipay options.qq, tt, ks, swan, my)'
    );
  }
  return nativePlatform(wxApi, NATIVE[0], 'wx');
}

// ---- phone-number buttons --------------------------------------------------

// bindPhone takes the button's event or its detail.
function phoneDetailOf(arg) {
  if (!arg || typeof arg !== 'object') return {};
  return arg.detail && typeof arg.detail === 'object' ? arg.detail : arg;
}

// The failure's number: errno (WeChat), errNo (Douyin), errCode (Baidu),
// error (Alipay's my.* fail objects and the button's onError detail).
function phoneErrno(detail) {
  var names = ['errno', 'errNo', 'errCode', 'error'];
  for (var i = 0; i < names.length; i++) {
    var v = detail[names[i]];
    if (typeof v === 'number') return v;
    if (typeof v === 'string' && v !== '' && !isNaN(Number(v))) return Number(v);
  }
  return NaN;
}

// A platform's client-side failure of a phone-number button as an Error, or
// null. WeChat documents e.detail.errno 1400001 for "no quota" (an errMsg
// saying "no quota" counts too, for base libraries that give no errno). A
// refusal is an errMsg like "getPhoneNumber:fail user deny" (every
// platform but Alipay), or Alipay's {error, errorMessage}. Other failures
// (WeChat's errno 104 or 112: privacy agreement; "fail no permission": an
// unverified mini program) are reported like a refusal, errno kept.
function phoneFailure(detail, errMsg) {
  var errno = phoneErrno(detail);
  var extra = { errMsg: errMsg };
  if (!isNaN(errno)) extra.errno = errno;
  if (errno === PHONE_NO_QUOTA_ERRNO || /no quota/i.test(errMsg)) {
    return makeError(
      'phone_quota_exceeded',
      "WeChat has no quota left for this mini program's phone-number buttons" + (errMsg ? ' (' + errMsg + ')' : ''),
      extra
    );
  }
  if (/deny|fail/i.test(errMsg) || (!isNaN(errno) && errno !== 0) || (typeof detail.errorMessage === 'string' && detail.errorMessage)) {
    return makeError('phone_denied', errMsg || 'the phone number button failed with errno ' + errno, extra);
  }
  return null;
}

function jsonObjectOf(s) {
  if (typeof s !== 'string' || s.charAt(0) !== '{') return null;
  try {
    var v = JSON.parse(s);
    return v && typeof v === 'object' ? v : null;
  } catch (e) {
    return null;
  }
}

// Alipay's phone number, as the gateway takes it: {response, sign}, from
//   my.getPhoneNumber's success {response: '{"response":"<ciphertext>","sign":"...",...}'}
//   (that JSON string, or the object in it, may be passed too),
//   uni-app's getphonenumber detail on Alipay {encryptedData: <ciphertext>, sign}
//   (older uni-app: encryptedData holds the whole JSON string).
// Returns {form}, {failure} when Alipay answered a refusal in the clear
// (content encryption not set up, product not bound), or null when the
// detail is not Alipay's.
function alipayPhoneOf(detail) {
  var inner = jsonObjectOf(detail.response) || (detail.iv ? null : jsonObjectOf(detail.encryptedData));
  if (!inner && typeof detail.response === 'object' && detail.response && 'response' in detail.response) inner = detail.response;
  if (!inner && typeof detail.sign === 'string' && typeof detail.response === 'object' && detail.response) inner = { response: detail.response, sign: detail.sign };
  var response;
  var sign;
  if (inner && 'response' in inner) {
    response = inner.response;
    sign = inner.sign;
  } else if (typeof detail.sign === 'string') {
    response = typeof detail.response === 'string' ? detail.response : detail.encryptedData;
    sign = detail.sign;
  } else if (typeof detail.response === 'string' && !detail.iv) {
    response = detail.response; // no sign: Alipay signs only when the app's signing key is set up
  } else {
    return null;
  }
  if (response && typeof response === 'object') {
    // Unencrypted: an error such as {"code":"40001","subCode":"isv.missing-encrypt-key"}.
    var msg = 'getPhoneNumber:fail ' + (response.subMsg || response.msg || 'Alipay answered in the clear') + (response.subCode ? ' (' + response.subCode + ')' : '');
    var extra = { errMsg: msg };
    if (!isNaN(Number(response.code))) extra.errno = Number(response.code);
    return { failure: makeError('phone_denied', msg, extra) };
  }
  if (typeof response !== 'string' || !response) return null;
  var form = { response: response };
  if (typeof sign === 'string' && sign) form.sign = sign;
  return { form: form };
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
  // True while the login in flight was asked for with {force: true}: the
  // stored session belongs to a session key the platform dropped, so
  // requests wait for the new one instead of using it.
  var forcing = false;
  // Alipay's my.request fails (error 14) on a body that does not parse as its
  // dataType says, such as logout's empty 204: the kit's own calls ask there
  // for text and parse it themselves.
  var ownDataType = platform.textBodies ? 'text' : undefined;

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
    return platform.request(req).then(answer, function (e) {
      // Alipay's my.request reports a non-2xx answer through fail: with its
      // status it is an answer like any other.
      if (statusOf(e) !== undefined) return answer(e);
      var msg = errMsgOf(e, 'request:fail');
      throw makeError('network_error', msg, { errMsg: msg });
    });
  }

  function answer(res) {
    res = res || {};
    return { statusCode: statusOf(res), data: res.data, header: res.header || res.headers || {} };
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
      // Alipay's error 13 is its timeout, and error 19 a non-2xx answer that
      // came without its status: neither is a lost connection.
      if (!retry || err.code !== 'network_error' || /timeout|\(error 1[39]\)/i.test(err.errMsg || '')) throw err;
      return rawRequest(opts);
    });
  }

  // The platform's login: the one-time code, or wx_login_failed.
  function wxLogin() {
    return platform.login(timeout).then(
      function (res) {
        // Alipay's my.getAuthCode says authCode (uni-app and Taro map it to code).
        var code = res && (res.code || res.authCode);
        if (code && typeof code === 'string') return code;
        throw makeError('wx_login_failed', errMsgOf(res, platform.label + '.login gave no code'));
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

  // wx.login (qq.login, tt.login, ks.login, swan.getLoginCode,
  // my.getAuthCode, uni.login, Taro.login) -> POST {prefix}/login. Always a
  // fresh login; every caller that asks while one is in flight shares it:
  // many first requests make one login. {force: true} (for an upstream that
  // relays session_key_invalid) also makes request() and ensureLogin() wait
  // for it rather than use the stored token.
  function login(loginOptions) {
    if (loginOptions && loginOptions.force) forcing = true;
    if (loginInFlight) return loginInFlight;
    var p = wxLogin()
      .then(function (code) {
        return rawRequestRetrying(
          { url: prefix + '/login', method: 'POST', header: jsonHeader(''), data: { code: code }, dataType: ownDataType },
          true
        );
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
      if (loginInFlight === p) {
        loginInFlight = null;
        forcing = false;
      }
    }
    p.then(done, done);
    return p;
  }

  // A valid token: the stored one, or a fresh login's.
  function ensureToken() {
    if (forcing && loginInFlight) {
      return loginInFlight.then(function (body) {
        return body.token;
      });
    }
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
    return request({ url: prefix + path, method: method, data: data, header: { 'Content-Type': 'application/json' }, dataType: ownDataType }).then(
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
      data: { encryptedData: encryptedData, iv: iv },
      dataType: ownDataType
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

  // A form that does not depend on the session key: logs in and retries on
  // 401 like any other call.
  function postPhone(form) {
    return call('POST', '/phone', form).then(function (body) {
      markPhoneBound();
      return body;
    });
  }

  /**
   * bindPhone(eventOrDetail) with the event (or its `detail`) of
   *   <button open-type="getPhoneNumber" bindgetphonenumber="...">  or
   *   <button open-type="getRealtimePhoneNumber" bindgetrealtimephonenumber="...">
   * (uni-app: @getphonenumber / @getrealtimephonenumber; Taro:
   * onGetPhoneNumber / onGetRealTimePhoneNumber)
   * (QQ, Douyin, Kuaishou, Baidu: the getPhoneNumber button's event; Alipay:
   * my.getPhoneNumber's success result, or uni-app's getphonenumber event)
   * -> Promise<{phoneNumber, purePhoneNumber, countryCode}>
   *
   * On WeChat detail.code (getPhoneNumber since base library 2.21.2, and
   * always for getRealtimePhoneNumber) posts {code}; older base libraries
   * give {encryptedData, iv}, posted as the legacy form, which is the form
   * of QQ, Douyin, Kuaishou and Baidu. Alipay's posts {response, sign}.
   * The platform's own refusals send nothing: errno 1400001 (no quota left)
   * rejects with 'phone_quota_exceeded', any other failure (the user said
   * no, or the platform did not ask) with 'phone_denied'; both keep errMsg
   * and errno.
   */
  function bindPhone(eventOrDetail) {
    var detail = typeof eventOrDetail === 'string' ? { response: eventOrDetail } : phoneDetailOf(eventOrDetail);
    var errMsg = typeof detail.errMsg === 'string' ? detail.errMsg : typeof detail.errorMessage === 'string' ? detail.errorMessage : '';
    var failure = phoneFailure(detail, errMsg);
    if (failure) return Promise.reject(failure);
    var alipay = alipayPhoneOf(detail);
    if (alipay && alipay.failure) return Promise.reject(alipay.failure);
    if (alipay) return postPhone(alipay.form);
    var legacy = detail.encryptedData && detail.iv;
    // Only WeChat's gateway takes the phone code: elsewhere (Douyin's newer
    // button gives a code for another API) the sealed form goes first.
    if (detail.code && (platform.kind === 'wechat' || !legacy)) return postPhone({ code: detail.code });
    if (legacy) return bindLegacy(detail.encryptedData, detail.iv);
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
    return rawRequest({ url: prefix + '/logout', method: 'POST', header: jsonHeader(s.token), dataType: ownDataType }).then(function (res) {
      if (isOK(res) || res.statusCode === 401) return;
      throw apiError(res);
    });
  }

  return {
    /** The platform the client speaks to: 'wechat', 'qq', 'douyin', 'kuaishou', 'baidu' or 'alipay'. */
    platform: platform.kind,
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
