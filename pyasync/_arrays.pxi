# Shared by the extension modules (included, as each declares the core's
# structs from its own header): NumPy buffers handed to the C core.

cdef void *_data(cnp.ndarray a, object dtype, str name) except NULL:
    if a.dtype != dtype or not a.flags.c_contiguous:
        raise TypeError(f"{name} must be a C-contiguous {np.dtype(dtype)} array")
    if a.size == 0:
        return <void *>a  # never read: a valid non-NULL address
    return cnp.PyArray_DATA(a)


cdef void _set_replay(pa_sim_opts *so, dict engine) except *:
    """A replay engine's law, P(staleness <= s), for the simulated engines
    (the engine dict keeps the array alive through the call)."""
    cdf = engine["replay_cdf"]
    if cdf.shape[0] < 1:
        raise ValueError("the replayed staleness distribution is empty")
    so.replay_cdf = <const double *>_data(cdf, np.float64, "replay_cdf")
    so.replay_len = cdf.shape[0]
