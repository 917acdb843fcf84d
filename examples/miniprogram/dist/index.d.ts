// Type declarations for caddy-wechat-auth-miniprogram (dist/index.js).
// Hand-written; types-test/sample.ts uses every export under `tsc --strict`.

// ---- error codes -------------------------------------------------------------

/** The `error` of the gateway's JSON error answers (caddy-wechat-auth's docs/endpoints.md, "Errors"). */
export type GatewayErrorCode =
  | 'invalid_request'
  | 'decrypt_failed'
  | 'watermark_mismatch'
  | 'unauthenticated'
  | 'invalid_code'
  | 'user_blocked'
  | 'phone_required'
  /** 404 from the gateway's upstream API: no live session for that openid. */
  | 'unknown_user'
  /**
   * 409 from the gateway's upstream API, relayed by your upstream: the
   * platform no longer holds the user's session key. Call
   * `login({ force: true })`.
   */
  | 'session_key_invalid'
  | 'method_not_allowed'
  | 'body_too_large'
  | 'unsupported_media_type'
  | 'request_timeout'
  | 'rate_limited'
  | 'wechat_error'
  | 'wechat_unavailable'
  | 'store_unavailable'
  | 'wechat_timeout';

/** The codes the kit gives itself. */
export type ClientErrorCode =
  /** The platform's request failed: no answer (network, timeout, abort). Keeps `errMsg`. */
  | 'network_error'
  /**
   * The platform's login (wx.login, qq.login, tt.login, ks.login,
   * swan.getLoginCode or swan.login, my.getAuthCode, uni.login, Taro.login)
   * failed or gave no code. Keeps `errMsg` when there is one.
   */
  | 'wx_login_failed'
  /** A phone-number button failed: the user said no, or WeChat did not ask (`errno` 104, 112, ...). Nothing was sent. */
  | 'phone_denied'
  /** A phone-number button failed with `errno` 1400001: the mini program's quota for the component is used up. Nothing was sent. */
  | 'phone_quota_exceeded'
  /** A 2xx login answer without a token. */
  | 'bad_response'
  /** A call the kit cannot make, such as `request()` without a url. */
  | 'invalid_argument';

/** A non-2xx answer that carries no JSON `error` (for example an HTML page from a proxy in front). */
export type HttpErrorCode = `http_${number}`;

/** Every `code` a {@link WechatAuthError} can carry. */
export type WechatAuthErrorCode = GatewayErrorCode | ClientErrorCode | HttpErrorCode;

/** What every promise of the kit rejects with. */
export interface WechatAuthError extends Error {
  name: 'WechatAuthError';
  code: WechatAuthErrorCode;
  /** The HTTP status, when the gateway answered. */
  statusCode?: number;
  /** The answer's body (parsed JSON when it is JSON), when the gateway answered. */
  data?: unknown;
  /** The answer's headers, when the gateway answered. */
  header?: Record<string, string>;
  /**
   * The platform's message (network_error, wx_login_failed, phone_denied,
   * phone_quota_exceeded): its errMsg, or Alipay's errorMessage followed by
   * ` (error <n>)`.
   */
  errMsg?: string;
  /**
   * The phone-number button's failure number, when the platform gave one:
   * WeChat's errno (1400001: no quota), Douyin's errNo, Baidu's errCode,
   * Alipay's error (or the code of an answer it gave in the clear).
   */
  errno?: number;
  /**
   * The legacy phone form could not be used (decrypt_failed, or unauthenticated
   * at tap time): the kit has logged in again, the user should tap once more.
   */
  tapAgain?: boolean;
}

/** True for the errors the kit rejects with: narrows `unknown` in a `catch`. */
export declare function isWechatAuthError(value: unknown): value is WechatAuthError;

// ---- platforms -----------------------------------------------------------------

/** The platforms the kit speaks to (`client.platform`; `platform` of uni-app and Taro options). */
export type PlatformName = 'wechat' | 'qq' | 'douyin' | 'kuaishou' | 'baidu' | 'alipay';

/**
 * The platform's failure object (`fail` callback argument, or Taro's
 * rejection): `errMsg` on every platform but Alipay, whose my.* APIs give
 * `error` and `errorMessage`.
 */
export interface PlatformFailure {
  errMsg?: string;
  error?: number;
  errorMessage?: string;
}

/** What login's success gives (my.getAuthCode: `authCode`). */
export interface PlatformLoginResult {
  code?: string;
  authCode?: string;
  errMsg?: string;
}

/** What the kit passes to the platform's login. */
export interface PlatformLoginOptions {
  /** uni.login only: the build's platform ('weixin' on WeChat). */
  provider?: 'weixin' | 'qq' | 'toutiao' | 'baidu' | 'alipay';
  /** Alipay (my.getAuthCode, and uni.login / Taro.login there): always 'auth_base'. */
  scopes?: 'auth_base';
  timeout?: number;
}

/** What the kit passes to wx.request (qq, tt, ks, swan, uni, Taro alike). */
export interface PlatformRequestOptions {
  url: string;
  method: HttpMethod;
  header: Record<string, string>;
  data?: RequestData;
  dataType?: string;
  responseType?: 'text' | 'arraybuffer';
  timeout?: number;
  /** Set unless `http2: false` (not on Alipay). */
  enableHttp2?: boolean;
}

/** What request's success gives: `statusCode` and `header`, or Alipay's `status` and `headers`. */
export interface PlatformResponse {
  statusCode?: number;
  status?: number;
  data: unknown;
  header?: Record<string, string>;
  headers?: Record<string, string>;
}

interface PlatformStorage {
  getStorageSync(key: string): unknown;
  setStorageSync(key: string, data: unknown): unknown;
  removeStorageSync(key: string): unknown;
}

/** A login in callback style, as wx.login and its copies take it. */
type CallbackLogin = (
  options: PlatformLoginOptions & {
    success(result: PlatformLoginResult): void;
    fail(failure: PlatformFailure): void;
  }
) => unknown;

/** The part of `wx` (native WeChat) the kit uses: callback style. */
export interface WxLike extends PlatformStorage {
  login(
    options: PlatformLoginOptions & {
      success(result: PlatformLoginResult): void;
      fail(failure: PlatformFailure): void;
    }
  ): unknown;
  request(
    options: PlatformRequestOptions & {
      success(response: PlatformResponse): void;
      fail(failure: PlatformFailure): void;
    }
  ): unknown;
}

/** The part of `qq` (QQ) the kit uses: wx's shapes. */
export interface QqLike extends WxLike {}

/**
 * The part of `tt` (Douyin) the kit uses: wx's shapes (tt.login's
 * anonymousCode is not sent), but tt.request knows no TRACE or CONNECT, and
 * its typings take an object or bytes as data, not a string.
 */
export interface TtLike extends PlatformStorage {
  login: WxLike['login'];
  request(
    options: Omit<PlatformRequestOptions, 'method' | 'data'> & {
      method: Exclude<HttpMethod, 'TRACE' | 'CONNECT'>;
      data?: object | ArrayBuffer;
      success(response: PlatformResponse): void;
      fail(failure: PlatformFailure): void;
    }
  ): unknown;
}

/** The part of `ks` (Kuaishou) the kit uses: wx's shapes. */
export interface KsLike extends WxLike {}

/** The part of `swan` (Baidu) the kit uses: wx's shapes; swan.getLoginCode when present, else swan.login. */
export interface SwanLike extends PlatformStorage {
  getLoginCode?: CallbackLogin;
  login?: CallbackLogin;
  request: WxLike['request'];
}

/** What the kit passes to Alipay's my.request. */
export interface MyRequestOptions {
  url: string;
  method: HttpMethod;
  headers: Record<string, string>;
  /**
   * Your request's data. (Alipay's typings say Record<string, string> for an
   * object; its docs JSON-encode any object when content-type is
   * application/json, which the kit's own calls set.)
   */
  data?: string | Record<string, string> | ArrayBuffer;
  /** 'text' for the kit's own calls; yours as you set it ('arraybuffer' for responseType 'arraybuffer'). */
  dataType?: 'json' | 'text' | 'base64' | 'arraybuffer';
  timeout?: number;
}

/**
 * The part of `my` (Alipay) the kit uses: my.getAuthCode({ scopes:
 * 'auth_base' }) → `authCode`; my.request with `headers`, answering `status`
 * and `headers` (a non-2xx answer through `fail`, error 19); storage by
 * `{ key }` and `{ key, data }`.
 */
export interface MyLike {
  getAuthCode(options: {
    scopes: 'auth_base';
    success(result: { authCode: string }): void;
    fail(failure: PlatformFailure): void;
  }): unknown;
  request(
    options: MyRequestOptions & {
      success(response: PlatformResponse): void;
      fail(failure: PlatformFailure & Partial<PlatformResponse>): void;
    }
  ): unknown;
  getStorageSync(options: { key: string }): { data?: unknown } | unknown;
  setStorageSync(options: { key: string; data: unknown }): unknown;
  removeStorageSync(options: { key: string }): unknown;
}

/** The part of `uni` (uni-app) the kit uses: callback style, like `wx`, on every platform. */
export interface UniLike extends WxLike {}

/** The part of `Taro` (@tarojs/taro's default export) the kit uses: promise style. */
export interface TaroLike extends PlatformStorage {
  login(options: PlatformLoginOptions): PromiseLike<PlatformLoginResult>;
  request(options: PlatformRequestOptions): PromiseLike<PlatformResponse>;
}

// ---- createClient ------------------------------------------------------------------

interface CommonOptions {
  /** Where Caddy listens, e.g. 'https://api.example.com'. Required. */
  baseURL: string;
  /** The handler's path_prefix. Default '/wechat'. */
  pathPrefix?: string;
  /** The storage key of the session. Default 'wechat_auth_session'. */
  storageKey?: string;
  /** Milliseconds, for the platform's request and login. Default: the platform's. */
  timeout?: number;
  /** Ask for HTTP/2 (`enableHttp2`; not on Alipay). Default true. */
  http2?: boolean;
  /** Treat a token as expired this many ms early. Default 60000. */
  expirySkewMs?: number;
  /** A clock in ms, for tests. Default Date.now. */
  now?: () => number;
}

/** Every platform option absent: each options type below names one of them. */
interface NoPlatform {
  wx?: undefined;
  qq?: undefined;
  tt?: undefined;
  ks?: undefined;
  swan?: undefined;
  my?: undefined;
  uni?: undefined;
  taro?: undefined;
  platform?: undefined;
}

/** Native WeChat: `wx` (defaults to the global one). */
export interface WxClientOptions extends CommonOptions, Omit<NoPlatform, 'wx'> {
  wx?: WxLike;
}

/** Native QQ: pass `qq`. */
export interface QqClientOptions extends CommonOptions, Omit<NoPlatform, 'qq'> {
  qq: QqLike;
}

/** Native Douyin: pass `tt`. */
export interface TtClientOptions extends CommonOptions, Omit<NoPlatform, 'tt'> {
  tt: TtLike;
}

/** Native Kuaishou: pass `ks`. */
export interface KsClientOptions extends CommonOptions, Omit<NoPlatform, 'ks'> {
  ks: KsLike;
}

/** Native Baidu: pass `swan`. */
export interface SwanClientOptions extends CommonOptions, Omit<NoPlatform, 'swan'> {
  swan: SwanLike;
}

/** Native Alipay: pass `my`. */
export interface MyClientOptions extends CommonOptions, Omit<NoPlatform, 'my'> {
  my: MyLike;
}

/** uni-app: pass `uni`. */
export interface UniClientOptions extends CommonOptions, Omit<NoPlatform, 'uni' | 'platform'> {
  uni: UniLike;
  /** The build's platform. Default: told by the runtime's global object (my, tt, swan, ks, qq; else WeChat). */
  platform?: PlatformName;
}

/** Taro: pass `Taro` (`import Taro from '@tarojs/taro'`). */
export interface TaroClientOptions extends CommonOptions, Omit<NoPlatform, 'taro' | 'platform'> {
  taro: TaroLike;
  /** The build's platform. Default: told by the runtime's global object (my, tt, swan, ks, qq; else WeChat). */
  platform?: PlatformName;
}

/** One platform at most: `wx`, `qq`, `tt`, `ks`, `swan`, `my`, `uni` or `taro`. */
export type ClientOptions =
  | WxClientOptions
  | QqClientOptions
  | TtClientOptions
  | KsClientOptions
  | SwanClientOptions
  | MyClientOptions
  | UniClientOptions
  | TaroClientOptions;

/** Makes a client. Throws when there is no platform object, more than one, or no baseURL. */
export declare function createClient(options: ClientOptions): WechatAuthClient;

// ---- the client ----------------------------------------------------------------------

export type HttpMethod = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'DELETE' | 'OPTIONS' | 'TRACE' | 'CONNECT';

/** A request body: an object or array (sent as JSON), a string, or bytes. */
export type RequestData = string | object | ArrayBuffer;

export interface RequestOptions {
  /** Relative to baseURL, or absolute. */
  url: string;
  /** Default 'GET'; either case. */
  method?: HttpMethod | Lowercase<HttpMethod>;
  data?: RequestData;
  /** Any Authorization header here is replaced by the kit's Bearer. */
  header?: Record<string, string>;
  /** Milliseconds; overrides the client's timeout. */
  timeout?: number;
  /** 'json' (the default) parses the answer; anything else does not. */
  dataType?: string;
  responseType?: 'text' | 'arraybuffer';
}

/** An answer, whatever its HTTP status. `T` is what you expect the body to be. */
export interface HttpResponse<T = unknown> {
  statusCode: number;
  data: T;
  header: Record<string, string>;
}

/** POST /wechat/login's answer. */
export interface LoginResult {
  token: string;
  /** Seconds. */
  expires_in: number;
  openid: string;
  unionid?: string;
  has_phone: boolean;
}

/** GET /wechat/session's answer. */
export interface SessionInfo {
  openid: string;
  unionid?: string;
  has_phone: boolean;
  /** Seconds. */
  expires_in: number;
}

/** POST /wechat/phone's answer. */
export interface PhoneNumberResult {
  /** With the country code for numbers outside mainland China. */
  phoneNumber: string;
  purePhoneNumber: string;
  countryCode: string;
}

/** The session the kit keeps in storage. */
export interface StoredSession {
  token: string;
  /** Epoch ms; absent when the gateway gave no expiry. */
  expiresAt?: number;
  openid: string;
  unionid?: string;
  hasPhone: boolean;
}

/**
 * The `detail` of the getPhoneNumber and getRealtimePhoneNumber buttons'
 * events (bindgetphonenumber / bindgetrealtimephonenumber; uni-app
 * @getphonenumber / @getrealtimephonenumber; Taro onGetPhoneNumber /
 * onGetRealTimePhoneNumber).
 */
export interface PhoneNumberEventDetail {
  errMsg?: string;
  /** WeChat, on failure, in newer base libraries; 1400001: no quota. */
  errno?: number;
  /** Douyin's failure number. */
  errNo?: number;
  /** Baidu's failure number. */
  errCode?: number;
  /** Alipay's failure (my.getPhoneNumber's fail, the getAuthorize button's onError detail). */
  error?: number;
  errorMessage?: string;
  /** The one-time code (getPhoneNumber since base library 2.21.2; getRealtimePhoneNumber always). */
  code?: string;
  /** The legacy form (older base libraries). */
  encryptedData?: string;
  iv?: string;
  cloudID?: string;
  /**
   * Alipay: my.getPhoneNumber's `response`, the JSON string
   * `{"response": "<ciphertext>", "sign", "sign_type", "encrypt_type", "charset"}`
   * (or, with `sign`, the ciphertext itself).
   */
  response?: string;
  /** Alipay: the signature of the ciphertext (uni-app's getphonenumber detail carries it with encryptedData). */
  sign?: string;
}

/** What `login()` takes. */
export interface LoginOptions {
  /**
   * Log in again even with a live stored token (login() always does), and
   * make request() and ensureLogin() calls made meanwhile wait for the new
   * session rather than use the stored token: what to call when your
   * upstream relays `session_key_invalid`.
   */
  force?: boolean;
}

/** A phone-number button's event: anything with that `detail`. */
export interface PhoneNumberEvent {
  detail: PhoneNumberEventDetail;
}

export interface WechatAuthClient {
  /** The platform this client speaks to. */
  readonly platform: PlatformName;
  /**
   * An authenticated request. Logs in first when there is no valid token; on
   * 401 `unauthenticated` logs in again once and retries once. Resolves for
   * any HTTP status; rejects (WechatAuthError) only when no answer came or the
   * login failed.
   */
  request<T = unknown>(options: RequestOptions): Promise<HttpResponse<T>>;
  /** A fresh login (shared while one is in flight); `{ force: true }` after `session_key_invalid`. */
  login(options?: LoginOptions): Promise<LoginResult>;
  /** The stored token if still valid, else a login's. */
  ensureLogin(): Promise<string>;
  /**
   * Posts a phone-number button's event (or its detail) to /wechat/phone: on
   * WeChat getPhoneNumber's or getRealtimePhoneNumber's; on QQ, Douyin,
   * Kuaishou and Baidu getPhoneNumber's; on Alipay my.getPhoneNumber's
   * success result (or its `response` string), or uni-app's getphonenumber
   * event.
   */
  bindPhone(eventOrDetail: PhoneNumberEvent | PhoneNumberEventDetail | string): Promise<PhoneNumberResult>;
  /** GET /wechat/session; refreshes the stored expiry. */
  session(): Promise<SessionInfo>;
  /** POST /wechat/logout; always clears storage. */
  logout(): Promise<void>;
  /** The stored token if still valid, else ''. */
  getToken(): string;
  /** The stored session, or null. */
  getSession(): StoredSession | null;
}

export {};
