import { afterEach, describe, expect, it } from 'vitest';
import { KMSServiceException, NotFoundException as SdkNotFound } from '@aws-sdk/client-kms';
import { KmsHmacClient } from '../src/client/client.js';
import {
  DisabledException,
  KMSInvalidMacException,
  KmsError,
  NotFoundException,
  ValidationException,
  kmsError,
  sdkErrorClassesActive,
  toWireError,
  useSdkErrorClasses,
} from '../src/kms/errors.js';

afterEach(() => useSdkErrorClasses(true));

describe('errors', () => {
  it('with the SDK installed, errors are SDK instances (modeled classes, KMSServiceException for the rest)', () => {
    expect(sdkErrorClassesActive()).toBe(true);
    const e = kmsError('NotFoundException', 'x');
    expect(e).toBeInstanceOf(SdkNotFound);
    expect(e).toBeInstanceOf(NotFoundException);
    expect(e).toBeInstanceOf(KmsError);
    expect(e).not.toBeInstanceOf(DisabledException);
    const v = kmsError('ValidationException', 'y');
    expect(v).toBeInstanceOf(KMSServiceException);
    expect(v.name).toBe('ValidationException');
    expect(v).toBeInstanceOf(ValidationException);
    expect(v.$metadata).toMatchObject({ httpStatusCode: 400, attempts: 1, totalRetryDelay: 0 });
  });

  it('without the SDK: own classes with the same shape', async () => {
    useSdkErrorClasses(false);
    const client = new KmsHmacClient();
    const e: any = await client
      .generateMac({ KeyId: 'alias/x', MacAlgorithm: 'HMAC_SHA_256', Message: 'm' })
      .catch((x) => x);
    expect(e).toBeInstanceOf(NotFoundException);
    expect(e).toBeInstanceOf(Error);
    expect(e).not.toBeInstanceOf(KMSServiceException);
    expect(e.name).toBe('NotFoundException');
    expect(e.message).toBe('Alias arn:aws:kms:us-east-1:111122223333:alias/x is not found.');
    expect(e.$fault).toBe('client');
    expect(e.$metadata).toEqual({
      httpStatusCode: 400,
      requestId: expect.any(String),
      attempts: 1,
      totalRetryDelay: 0,
    });
    const mac = new KMSInvalidMacException();
    expect(mac.message).toBe('UnknownError');
    expect(toWireError(mac)).toEqual({ status: 400, type: 'KMSInvalidMacException' });
    const internal = kmsError('KMSInternalException', 'boom');
    expect(internal.$fault).toBe('server');
    expect(internal.$metadata.httpStatusCode).toBe(500);
  });

  it('toWireError', () => {
    expect(toWireError(kmsError('DisabledException', 'arn is disabled.'))).toEqual({
      status: 400,
      type: 'DisabledException',
      message: 'arn is disabled.',
    });
    expect(toWireError(kmsError('KMSInvalidMacException'))).toEqual({ status: 400, type: 'KMSInvalidMacException' });
    expect(toWireError(new TypeError('secret internals'))).toEqual({
      status: 500,
      type: 'KMSInternalException',
      message: 'An internal error occurred.',
    });
  });
});

describe('lifecycle', () => {
  it('a closed client refuses MAC work with a clear error', async () => {
    const client = new KmsHmacClient();
    const { KeyMetadata: k } = await client.createKey({ KeySpec: 'HMAC_256', KeyUsage: 'GENERATE_VERIFY_MAC' });
    client.generateMacSync({ KeyId: k.KeyId, MacAlgorithm: 'HMAC_SHA_256', Message: 'x' });
    await client.close();
    expect(() => client.generateMacSync({ KeyId: k.KeyId, MacAlgorithm: 'HMAC_SHA_256', Message: 'x' })).toThrow(
      'KmsHmacClient is closed',
    );
    await expect(client.createKey({ KeySpec: 'HMAC_256', KeyUsage: 'GENERATE_VERIFY_MAC' })).rejects.toThrow(/closed/);
  });
});
