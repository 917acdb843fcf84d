// Native Alipay: the real `my` of @mini-types/alipay.
import { createClient } from '../..';
import type { WechatAuthClient } from '../..';

// @ts-expect-error not a my API
my.notAnApi();

export const myClient: WechatAuthClient = createClient({ baseURL: 'https://api.example.com', my });

// my.getPhoneNumber's real answer goes to bindPhone as it is.
export async function onGetAuthorize(): Promise<string> {
  const res = await my.getPhoneNumber();
  return (await myClient.bindPhone(res)).purePhoneNumber;
}
