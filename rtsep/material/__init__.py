"""Test and benchmark material: real speech and music, generated backgrounds, simulated rooms.

Not the runtime: the separator, replay, live and the service never import it.
``rtsep demo`` does (:func:`~rtsep.material.speech.demo_clip`, the generated
backgrounds of :mod:`~rtsep.material.signals`), which is why speech, signals and
music need nothing beyond the runtime's own dependencies; :mod:`~rtsep.material.rooms`
needs pyroomacoustics (a test extra) and imports it only when a room is simulated.

- :mod:`~rtsep.material.speech`: real recorded speech (Debian's Asterisk prompts) and the shipped demo clip;
- :mod:`~rtsep.material.music`: real produced music (Debian packages);
- :mod:`~rtsep.material.signals`: generated backgrounds (music-like, pink noise, babble, café) and mixing;
- :mod:`~rtsep.material.rooms`: simulated rooms and moving talkers;
- :mod:`~rtsep.material.causal_bound`: the fd engine's yardstick in rooms (frozen demixers, batch
  AuxIVA fitted on the past only).
"""
