#ifndef COPENSSL_SHIM_H
#define COPENSSL_SHIM_H
#include <openssl/hmac.h>
#include <openssl/evp.h>
#include <openssl/md5.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#endif
