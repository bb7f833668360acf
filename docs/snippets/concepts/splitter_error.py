def forgetful_splitter(m):  # leaves out the head's parameters
    return [list(m[0:3].parameters()), list(m[3:5].parameters())]


try:
    Learner(dls, make_model(), nn.CrossEntropyLoss(), splitter=forgetful_splitter)
except ValueError as e:
    print("ValueError:", e)
