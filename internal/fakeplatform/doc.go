// Package fakeplatform is the body the fakes of platforms/qq/qqtest,
// platforms/douyin/douyintest and platforms/kuaishou/kuaishoutest share:
// users named by their codes, single-use codes, a new session key per
// login, deterministic openids, the FailNext/RespondNext/SetDelay knobs,
// sealing of open data, and the /_mock/ endpoints of wechattest. What
// differs per platform (how the login request is read, the envelope of a
// success and of an error, the errcodes) is a Platform.
package fakeplatform
