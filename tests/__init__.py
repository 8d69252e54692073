"""The test suite: a regular package, so ``tests.*`` imports find it before the ``tests``
package that TPTBox puts on ``sys.path`` when imported."""
