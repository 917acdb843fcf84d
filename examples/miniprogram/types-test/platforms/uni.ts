// uni-app: the real `uni` of @dcloudio/types, on every platform it builds for.
import { createClient } from '../..';
import type { WechatAuthClient } from '../..';

// @ts-expect-error not a uni API
uni.notAnApi();

export const uniClient: WechatAuthClient = createClient({ baseURL: 'https://api.example.com', uni });
export const uniAlipay: WechatAuthClient = createClient({ baseURL: 'https://api.example.com', uni, platform: 'alipay' });
