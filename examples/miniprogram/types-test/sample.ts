// A strict TypeScript user of the kit's declarations (dist/index.d.ts),
// checked by `tsc -p types-test --noEmit` (kit_test.go runs it). It is never
// run. It imports the package folder, so package.json's "types" is used.
//
// It uses every export: a declaration that disappears or changes shape is a
// compile error here, and so is a new runtime export that this file does not
// list (see `everyValueExport`). The @ts-expect-error lines prove that the
// types reject what they should; were a type loosened (to `any`, say), the
// unused directive would fail the check.

import * as kit from '..';
import { createClient, isWechatAuthError } from '..';
import type {
  ClientErrorCode,
  ClientOptions,
  GatewayErrorCode,
  HttpErrorCode,
  HttpMethod,
  HttpResponse,
  KsClientOptions,
  KsLike,
  LoginOptions,
  LoginResult,
  MyClientOptions,
  MyLike,
  MyRequestOptions,
  PhoneNumberEvent,
  PhoneNumberEventDetail,
  PhoneNumberResult,
  PlatformFailure,
  PlatformLoginOptions,
  PlatformLoginResult,
  PlatformName,
  PlatformRequestOptions,
  PlatformResponse,
  QqClientOptions,
  QqLike,
  RequestData,
  RequestOptions,
  SessionInfo,
  StoredSession,
  SwanClientOptions,
  SwanLike,
  TaroClientOptions,
  TaroLike,
  TtClientOptions,
  TtLike,
  UniClientOptions,
  UniLike,
  WechatAuthClient,
  WechatAuthError,
  WechatAuthErrorCode,
  WxClientOptions,
  WxLike,
} from '..';

// Every runtime export, by name: adding one to index.d.ts without using it
// here, or losing one, does not compile.
const everyValueExport: { [K in keyof typeof kit]: true } = {
  createClient: true,
  isWechatAuthError: true,
};

// ---- platform objects, as a test would fake them ------------------------------

const memory: Record<string, unknown> = {};
const storage = {
  getStorageSync: (key: string): unknown => memory[key],
  setStorageSync: (key: string, data: unknown): void => {
    memory[key] = data;
  },
  removeStorageSync: (key: string): void => {
    delete memory[key];
  },
};

function answer(options: PlatformRequestOptions): PlatformResponse {
  const body: RequestData | undefined = options.data;
  return { statusCode: 200, data: { url: options.url, method: options.method, body }, header: {} };
}

const loginResult: PlatformLoginResult = { code: 'alice', errMsg: 'login:ok' };
const offline: PlatformFailure = { errMsg: 'request:fail offline' };

const fakeWx: WxLike = {
  ...storage,
  login(options) {
    const asked: PlatformLoginOptions = options;
    if (asked.provider === undefined) options.success(loginResult);
  },
  request(options) {
    if (options.enableHttp2 === false) options.fail(offline);
    else options.success(answer(options));
  },
};

const fakeUni: UniLike = {
  ...fakeWx,
  login(options) {
    if (options.provider === 'weixin') options.success(loginResult);
    else options.fail({ errMsg: 'login:fail provider' });
  },
};

const fakeTaro: TaroLike = {
  ...storage,
  login: (options: PlatformLoginOptions) => Promise.resolve({ ...loginResult, errMsg: `login:ok ${options.timeout ?? 0}` }),
  request: (options: PlatformRequestOptions) => Promise.resolve(answer(options)),
};

// QQ and Kuaishou copy wx; Douyin too, less TRACE/CONNECT and string bodies;
// Baidu has getLoginCode or login; Alipay has its own shapes throughout.
const fakeQq: QqLike = fakeWx;
const fakeKs: KsLike = fakeWx;
const fakeTt: TtLike = {
  ...storage,
  login: fakeWx.login,
  request(options) {
    options.success({ statusCode: 200, data: options.data ?? null });
  },
};
const fakeSwan: SwanLike = { ...storage, getLoginCode: fakeWx.login, request: fakeWx.request };
const oldSwan: SwanLike = { ...storage, login: fakeWx.login, request: fakeWx.request };
const alipayMemory: Record<string, unknown> = {};
const fakeMy: MyLike = {
  getAuthCode(options) {
    if (options.scopes === 'auth_base') options.success({ authCode: 'alice' });
  },
  request(options) {
    const o: MyRequestOptions = options;
    if (o.headers['content-type'] === undefined) options.fail({ error: 19, errorMessage: 'http status error', status: 401, data: '' });
    else options.success({ status: 200, headers: {}, data: o.dataType === 'text' ? '{}' : {} });
  },
  getStorageSync: ({ key }) => ({ data: alipayMemory[key] }),
  setStorageSync: ({ key, data }) => {
    alipayMemory[key] = data;
  },
  removeStorageSync: ({ key }) => {
    delete alipayMemory[key];
  },
};

// ---- createClient: one platform at most ---------------------------------------

const common = { baseURL: 'https://api.example.com', pathPrefix: '/wechat', storageKey: 'k', timeout: 10000, http2: true, expirySkewMs: 60000, now: () => 0 };
const wxOptions: WxClientOptions = { ...common, wx: fakeWx };
const uniOptions: UniClientOptions = { ...common, uni: fakeUni };
const taroOptions: TaroClientOptions = { ...common, taro: fakeTaro };
const nativeDefault: ClientOptions = { baseURL: 'https://api.example.com' }; // the global wx
const qqOptions: QqClientOptions = { ...common, qq: fakeQq };
const ttOptions: TtClientOptions = { ...common, tt: fakeTt };
const ksOptions: KsClientOptions = { ...common, ks: fakeKs };
const swanOptions: SwanClientOptions = { ...common, swan: fakeSwan };
const myOptions: MyClientOptions = { ...common, my: fakeMy };
const built: PlatformName = 'alipay';
const uniOnAlipay: UniClientOptions = { ...common, uni: fakeUni, platform: built };
const taroOnDouyin: TaroClientOptions = { ...common, taro: fakeTaro, platform: 'douyin' };
const otherPlatforms: WechatAuthClient[] = [qqOptions, ttOptions, ksOptions, swanOptions, myOptions, uniOnAlipay, taroOnDouyin, { baseURL: 'x', swan: oldSwan }].map(createClient);
const platformOfClient: PlatformName = otherPlatforms[0]!.platform;

const clients: WechatAuthClient[] = [createClient(wxOptions), createClient(uniOptions), createClient(taroOptions), createClient(nativeDefault)];

// @ts-expect-error baseURL is required
createClient({ wx: fakeWx });
// @ts-expect-error one platform, not two
createClient({ baseURL: 'https://api.example.com', wx: fakeWx, uni: fakeUni });
// @ts-expect-error one platform, not two, whichever they are
createClient({ baseURL: 'https://api.example.com', tt: fakeTt, my: fakeMy });
// @ts-expect-error `platform` is for uni-app and Taro builds: a native object says its own
createClient({ baseURL: 'https://api.example.com', tt: fakeTt, platform: 'douyin' });
// @ts-expect-error not a platform the kit knows
createClient({ baseURL: 'https://api.example.com', uni: fakeUni, platform: 'lark' });
// @ts-expect-error Alipay's storage takes {key}: a wx-like object is not a MyLike
createClient({ baseURL: 'https://api.example.com', my: fakeWx });
// @ts-expect-error Taro is promise style: a callback-style object is not a TaroLike
createClient({ baseURL: 'https://api.example.com', taro: { ...storage, login: fakeWx.login, request: fakeWx.request } });

// ---- requests -----------------------------------------------------------------

interface Order {
  id: string;
  title: string;
}

const method: HttpMethod = 'GET';
const ordersRequest: RequestOptions = { url: '/api/orders', method, header: { 'X-Trace': '1' }, timeout: 5000, dataType: 'json', responseType: 'text' };

async function loadOrders(client: WechatAuthClient): Promise<Order[]> {
  const res: HttpResponse<Order[]> = await client.request<Order[]>(ordersRequest);
  if (res.statusCode !== 200) return [];
  const etag: string | undefined = res.header['ETag'];
  return etag === '' ? [] : res.data;
}

async function postOrder(client: WechatAuthClient, order: Order): Promise<number> {
  const res = await client.request({ url: '/api/orders', method: 'post', data: order });
  const body: unknown = res.data; // unknown unless the caller says what it expects
  return body === null ? 0 : res.statusCode;
}

// @ts-expect-error not an HTTP method
void clients[0]!.request({ url: '/x', method: 'FETCH' });

// ---- login, session, logout ---------------------------------------------------

const forced: LoginOptions = { force: true };

async function sessionFlow(client: WechatAuthClient): Promise<string> {
  const login: LoginResult = await client.login();
  const again: LoginResult = await client.login(forced);
  if (again.token === login.token) await client.login({ force: false });
  // @ts-expect-error force is a boolean
  await client.login({ force: 'yes' });
  const token: string = await client.ensureLogin();
  const info: SessionInfo = await client.session();
  const stored: StoredSession | null = client.getSession();
  const current: string = client.getToken();
  await client.logout();
  return [login.token, login.openid, login.unionid ?? '', String(login.has_phone), String(login.expires_in), token, info.openid, String(info.expires_in), String(info.has_phone), info.unionid ?? '', stored ? stored.token + String(stored.expiresAt) + stored.openid + String(stored.hasPhone) + (stored.unionid ?? '') : '', current].join();
}

// ---- phone-number buttons and error codes -------------------------------------

// What a caller does with each code: a switch that must cover every client code.
function explain(code: ClientErrorCode): string {
  switch (code) {
    case 'phone_denied':
      return 'the user said no';
    case 'phone_quota_exceeded':
      return 'no quota left: offer another way';
    case 'network_error':
      return 'offline';
    case 'wx_login_failed':
      return 'WeChat login failed';
    case 'bad_response':
      return 'the gateway answered oddly';
    case 'invalid_argument':
      return 'a bug in the caller';
    default: {
      const unreachable: never = code;
      return unreachable;
    }
  }
}

function describe(err: WechatAuthError): string {
  const code: WechatAuthErrorCode = err.code;
  if (code === 'phone_denied' || code === 'phone_quota_exceeded' || code === 'network_error' || code === 'wx_login_failed' || code === 'bad_response' || code === 'invalid_argument') {
    return explain(code) + (err.errno === 1400001 ? ' (errno 1400001)' : '') + (err.errMsg ?? '');
  }
  if (code.startsWith('http_')) {
    const http: HttpErrorCode = code as HttpErrorCode;
    return http + String(err.statusCode);
  }
  const gateway: GatewayErrorCode = code as GatewayErrorCode;
  const body: unknown = err.data;
  return gateway + (err.tapAgain ? ': tap again' : '') + (body === undefined ? '' : '!') + JSON.stringify(err.header ?? {}) + err.name + err.message;
}

// The codes of the gateway's upstream API, which an upstream may relay.
const relayed: GatewayErrorCode[] = ['session_key_invalid', 'unknown_user'];

// @ts-expect-error the codes are a union of literals, not any string
const notACode: WechatAuthErrorCode = 'phone_refused';
const anHttpCode: HttpErrorCode = 'http_502';

async function onPhoneButton(client: WechatAuthClient, e: PhoneNumberEvent): Promise<string> {
  try {
    const r: PhoneNumberResult = await client.bindPhone(e);
    return r.phoneNumber + r.purePhoneNumber + r.countryCode;
  } catch (err: unknown) {
    if (!isWechatAuthError(err)) throw err;
    return describe(err);
  }
}

// The events the buttons give, in each framework's shape: getPhoneNumber (new
// and legacy forms, and a failure with errno), getRealtimePhoneNumber (only a
// code), a Taro event with more fields, and a bare detail.
const quota: PhoneNumberEventDetail = { errMsg: 'getPhoneNumber:fail no quota', errno: 1400001 };
const events: PhoneNumberEvent[] = [
  { detail: { errMsg: 'getPhoneNumber:ok', code: 'c1' } },
  { detail: { errMsg: 'getPhoneNumber:ok', encryptedData: 'ZW5j', iv: 'aXY=', cloudID: 'x' } },
  { detail: quota },
];
const taroRealtimeEvent = { type: 'getrealtimephonenumber', timeStamp: 1, detail: { code: 'c2' }, currentTarget: { id: 'b' } };

export async function main(): Promise<string[]> {
  const client = clients[0]!;
  const out: string[] = [notACode, anHttpCode, String(everyValueExport.createClient), platformOfClient, ...relayed];
  out.push(...(await loadOrders(client)).map((o) => o.id + o.title));
  out.push(String(await postOrder(client, { id: '1', title: 't' })));
  out.push(await sessionFlow(client));
  for (const e of events) out.push(await onPhoneButton(client, e));
  out.push((await client.bindPhone(taroRealtimeEvent)).purePhoneNumber);
  out.push((await client.bindPhone(quota)).purePhoneNumber);
  // Alipay: my.getPhoneNumber's answer, its response string, uni-app's event.
  out.push((await client.bindPhone({ response: '{"response":"x","sign":"y"}' })).purePhoneNumber);
  out.push((await client.bindPhone('{"response":"x","sign":"y"}')).purePhoneNumber);
  out.push((await client.bindPhone({ detail: { errMsg: 'getPhoneNumber:ok', encryptedData: 'x', sign: 'y' } })).purePhoneNumber);
  out.push((await client.bindPhone({ detail: { errMsg: 'getPhoneNumber:fail auth deny', errNo: 10200 } })).purePhoneNumber);
  // @ts-expect-error not a phone-number event or detail
  await client.bindPhone({ detail: { code: 42 } });
  return out;
}
