// Native WeChat: the real `wx` of miniprogram-api-typings. (QQ, Kuaishou and
// Baidu publish no typings: their objects are checked only by sample.ts.)
import { createClient } from '../..';
import type { PhoneNumberEvent, WechatAuthClient } from '../..';

// The global wx is the real one, not `any`: an unknown API does not compile.
// @ts-expect-error not a wx API
wx.notAnApi();

export const wxClient: WechatAuthClient = createClient({ baseURL: 'https://api.example.com', wx });
export const wxDefault: WechatAuthClient = createClient({ baseURL: 'https://api.example.com' });

// The getPhoneNumber button's real event type goes to bindPhone as it is.
export function onPhone(e: WechatMiniprogram.ButtonGetPhoneNumber): Promise<string> {
  const event: PhoneNumberEvent = e;
  return wxClient.bindPhone(event).then((r) => r.purePhoneNumber);
}
