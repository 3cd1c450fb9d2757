import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import { REPO_ROOT } from '@aese/runtime';

/** Private keys of AS bundles and of the state folder never enter git or a Docker build context. */
describe('onboarding bundles and state stay out of git and the Docker context', () => {
  const PRIVATE = ['aese-bundles/my-as/client.key', 'my-as/client.key', 'my-as/signing.jwk', 'my-as/encryption.jwk', '.state/pki/mesh-ca.key', '.state/crypto-kek'];

  it('git ignores them, and still tracks ordinary files (positive control)', () => {
    const ignored = (path: string): boolean => {
      try {
        execFileSync('git', ['check-ignore', '-q', '--no-index', path], { cwd: REPO_ROOT });
        return true;
      } catch {
        return false;
      }
    };
    for (const path of PRIVATE) expect(ignored(path), path).to.equal(true);
    expect(ignored('libs/cli/src/onboard.ts')).to.equal(false);
  });

  it('both Docker ignore files keep them out of the build context', () => {
    for (const file of ['.dockerignore', join('deploy', 'Dockerfile.dockerignore')]) {
      const lines = readFileSync(join(REPO_ROOT, file), 'utf8')
        .split('\n')
        .map(l => l.trim());
      for (const pattern of ['.state', '**/.state', '**/aese-bundles', '**/client.key', '**/signing.jwk', '**/encryption.jwk']) {
        expect(lines, `${file}: ${pattern}`).to.include(pattern);
      }
    }
  });
});
