// Native Douyin: the real `tt` of @douyin-microapp/typings.
import { createClient } from '../..';
import type { WechatAuthClient } from '../..';

// @ts-expect-error not a tt API
tt.notAnApi();

export const ttClient: WechatAuthClient = createClient({ baseURL: 'https://api.example.com', tt });
