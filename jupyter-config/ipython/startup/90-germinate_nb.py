# Loads the germinate_nb magics into every IPython kernel of this environment.
try:
    get_ipython().extension_manager.load_extension("germinate_nb")  # noqa: F821
except Exception as err:  # a broken install must never break a kernel
    print(f"germinate_nb: extension not loaded ({type(err).__name__}: {err})")
