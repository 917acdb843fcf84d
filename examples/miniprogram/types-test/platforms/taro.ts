// Taro: the real default export of @tarojs/taro, on every platform it builds for.
import Taro from '@tarojs/taro';
import { createClient } from '../..';
import type { PhoneNumberEvent, WechatAuthClient } from '../..';

// @ts-expect-error not a Taro API
Taro.notAnApi();

export const taroClient: WechatAuthClient = createClient({ baseURL: 'https://api.example.com', taro: Taro });
export const taroDouyin: WechatAuthClient = createClient({ baseURL: 'https://api.example.com', taro: Taro, platform: 'douyin' });

// Taro's button event for onGetPhoneNumber goes to bindPhone as it is: the
// event type of Taro's typings, with the detail @tarojs/components declares
// for the button (that package, a peer of @tarojs/taro, is not installed).
export function onPhone(e: TaroGeneral.BaseEventOrig<{ errMsg: string; encryptedData: string; iv: string; code?: string }>): void {
  const event: PhoneNumberEvent = e;
  void taroClient.bindPhone(event);
}
