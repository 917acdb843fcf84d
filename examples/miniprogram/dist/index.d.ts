// Type declarations for caddy-wechat-auth-miniprogram (dist/index.js).
// Hand-written; types-test/sample.ts uses every export under `tsc --strict`.

// ---- error codes -------------------------------------------------------------

/** The `error` of the gateway's JSON error answers (caddy-wechat-auth's README, "Errors"). */
export type GatewayErrorCode =
  | 'invalid_request'
  | 'decrypt_failed'
  | 'watermark_mismatch'
  | 'unauthenticated'
  | 'invalid_code'
  | 'user_blocked'
  | 'phone_required'
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
  /** wx.login / uni.login / Taro.login failed or gave no code. Keeps `errMsg` when there is one. */
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
  /** The platform's errMsg (network_error, wx_login_failed, phone_denied, phone_quota_exceeded). */
  errMsg?: string;
  /** The phone-number button's `errno`, when WeChat gave one (1400001: no quota). */
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

/** The platform's failure object (`fail` callback argument, or Taro's rejection). */
export interface PlatformFailure {
  errMsg: string;
}

/** What login's success gives. */
export interface PlatformLoginResult {
  code: string;
  errMsg: string;
}

/** What the kit passes to wx.login / uni.login / Taro.login. */
export interface PlatformLoginOptions {
  /** uni.login only: always 'weixin'. */
  provider?: 'weixin';
  timeout?: number;
}

/** What the kit passes to wx.request / uni.request / Taro.request. */
export interface PlatformRequestOptions {
  url: string;
  method: HttpMethod;
  header: Record<string, string>;
  data?: RequestData;
  dataType?: string;
  responseType?: 'text' | 'arraybuffer';
  timeout?: number;
  /** Set unless `http2: false`. */
  enableHttp2?: boolean;
}

/** What request's success gives. */
export interface PlatformResponse {
  statusCode: number;
  data: unknown;
  header?: Record<string, string>;
}

interface PlatformStorage {
  getStorageSync(key: string): unknown;
  setStorageSync(key: string, data: unknown): unknown;
  removeStorageSync(key: string): unknown;
}

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

/** The part of `uni` (uni-app) the kit uses: callback style, like `wx`; login with provider 'weixin'. */
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
  /** Ask for HTTP/2 (`enableHttp2`). Default true. */
  http2?: boolean;
  /** Treat a token as expired this many ms early. Default 60000. */
  expirySkewMs?: number;
  /** A clock in ms, for tests. Default Date.now. */
  now?: () => number;
}

/** Native WeChat: `wx` (defaults to the global one). */
export interface WxClientOptions extends CommonOptions {
  wx?: WxLike;
  uni?: undefined;
  taro?: undefined;
}

/** uni-app: pass `uni`. */
export interface UniClientOptions extends CommonOptions {
  uni: UniLike;
  wx?: undefined;
  taro?: undefined;
}

/** Taro: pass `Taro` (`import Taro from '@tarojs/taro'`). */
export interface TaroClientOptions extends CommonOptions {
  taro: TaroLike;
  wx?: undefined;
  uni?: undefined;
}

/** One platform at most: `wx`, `uni` or `taro`. */
export type ClientOptions = WxClientOptions | UniClientOptions | TaroClientOptions;

/** Makes a client. Throws when there is no platform object or no baseURL. */
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
  /** On failure, in newer base libraries; 1400001: no quota. */
  errno?: number;
  /** The one-time code (getPhoneNumber since base library 2.21.2; getRealtimePhoneNumber always). */
  code?: string;
  /** The legacy form (older base libraries). */
  encryptedData?: string;
  iv?: string;
  cloudID?: string;
}

/** A phone-number button's event: anything with that `detail`. */
export interface PhoneNumberEvent {
  detail: PhoneNumberEventDetail;
}

export interface WechatAuthClient {
  /**
   * An authenticated request. Logs in first when there is no valid token; on
   * 401 `unauthenticated` logs in again once and retries once. Resolves for
   * any HTTP status; rejects (WechatAuthError) only when no answer came or the
   * login failed.
   */
  request<T = unknown>(options: RequestOptions): Promise<HttpResponse<T>>;
  /** A fresh login (shared while one is in flight). */
  login(): Promise<LoginResult>;
  /** The stored token if still valid, else a login's. */
  ensureLogin(): Promise<string>;
  /** Posts a getPhoneNumber or getRealtimePhoneNumber button's event (or its detail) to /wechat/phone. */
  bindPhone(eventOrDetail: PhoneNumberEvent | PhoneNumberEventDetail): Promise<PhoneNumberResult>;
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
